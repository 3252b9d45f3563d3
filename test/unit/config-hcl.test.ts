import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../identity-core/cli/config-error.js';
import {
  decodeHcl,
  expandEnv,
  loadAgentConfig,
  loadServerConfig,
  parseAgentConfig,
  parseServerConfig,
} from '../../identity-core/cli/hcl-config.js';

/** Shaped like SPIRE's conf/server/server.conf: quoted port, `plugin_data = {}`, comments. */
const SPIRE_LIKE_SERVER = `
server {
    bind_address = "127.0.0.1"
    bind_port = "8081"
    socket_path = "/tmp/spire-server/private/api.sock"
    trust_domain = "example.org"
    data_dir = "./.data"
    log_level = "DEBUG"
    ca_ttl = "48h"
    default_x509_svid_ttl = "4h"
    default_jwt_svid_ttl = "10m"
    ca_key_type = "ec-p384"
    # ours
    experimental {
        ca_rotation_check_interval = "2s"
        cache_reload_interval = "1s"
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "postgres"
            connection_string = "postgres://spire@localhost/spire"
            ro_connection_string = "postgres://spire@replica/spire"
        }
    }

    NodeAttestor "join_token" {
        plugin_data {
        }
    }

    KeyManager "disk" {
        plugin_data = {
            keys_path = "./.data/keys.json"
        }
    }

    UpstreamAuthority "spire" {
        plugin_data {
            server_address = "upstream.local"
            server_port = "8081"
            workload_api_socket = "/tmp/spire-agent/public/api.sock"
        }
    }
}

telemetry {
    Prometheus {
        host = "0.0.0.0"
        port = 9988
    }
}

health_checks {
    listener_enabled = true
    bind_address = "0.0.0.0"
    bind_port = "8080"
    live_path = "/alive"
    ready_path = "/ready"
}
`;

const MINIMAL_SERVER = `
server {
  trust_domain = "example.org"
  data_dir = "/var/lib/spire"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "pglite"
      connection_string = "memory://"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;

const SPIRE_LIKE_AGENT = `
agent {
    data_dir = "./.data"
    log_level = "WARN"
    server_address = "127.0.0.1"
    server_port = "8081"
    socket_path ="/tmp/spire-agent/public/api.sock"
    trust_bundle_path = "./conf/agent/dummy_root_ca.crt"
    trust_domain = "example.org"
    join_token = "abc"
    experimental {
        sync_interval = "1s"
    }
}

plugins {
    NodeAttestor "join_token" {
        plugin_data {
        }
    }
    KeyManager "disk" {
        plugin_data {
            directory = "./.data"
        }
    }
    WorkloadAttestor "unix" {
        plugin_data {
        }
    }
}
`;

const MINIMAL_AGENT = `
agent {
  server_address = "localhost"
  server_port = 8081
  trust_domain = "example.org"
  trust_bundle_path = "/b.pem"
}
plugins {
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
`;

function serverError(text: string, overrides = {}): ConfigError {
  try {
    parseServerConfig(text, 'server.conf', { overrides });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function agentError(text: string): ConfigError {
  try {
    parseAgentConfig(text, 'agent.conf');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('server config', () => {
  it('normalizes a SPIRE-shaped server.conf', () => {
    const { config, warnings } = parseServerConfig(SPIRE_LIKE_SERVER, 'server.conf');
    expect(config).toEqual({
      server: {
        bindAddress: '127.0.0.1',
        bindPort: 8081,
        socketPath: '/tmp/spire-server/private/api.sock',
        trustDomain: 'example.org',
        dataDir: './.data',
        logLevel: 'debug',
        caTtl: 48 * 3600,
        defaultX509SvidTtl: 4 * 3600,
        defaultJwtSvidTtl: 600,
        agentTtl: 4 * 3600,
        caKeyType: 'ec-p384',
        maxAttestedNodeInfoStaleness: 0,
        experimental: { caRotationCheckInterval: 2, entryCacheReloadInterval: 1 },
      },
      plugins: {
        dataStore: {
          name: 'sql',
          databaseType: 'postgres',
          connectionString: 'postgres://spire@localhost/spire',
          roConnectionString: 'postgres://spire@replica/spire',
        },
        keyManager: { name: 'disk', keysPath: './.data/keys.json' },
        nodeAttestor: { name: 'join_token' },
        upstreamAuthority: {
          name: 'spire',
          serverAddress: 'upstream.local',
          serverPort: 8081,
          workloadApiSocket: '/tmp/spire-agent/public/api.sock',
        },
      },
      telemetry: { prometheus: { host: '0.0.0.0', port: 9988 } },
      healthChecks: {
        listenerEnabled: true,
        bindAddress: '0.0.0.0',
        bindPort: 8080,
        livePath: '/alive',
        readyPath: '/ready',
      },
    });
    expect(warnings).toEqual([]);
  });

  it("applies SPIRE's defaults", () => {
    const { config, warnings } = parseServerConfig(MINIMAL_SERVER, 'server.conf');
    expect(config.server).toMatchObject({
      bindAddress: '0.0.0.0',
      bindPort: 8081,
      socketPath: '/tmp/spire-server/private/api.sock',
      logLevel: 'info',
      caTtl: 86400,
      defaultX509SvidTtl: 3600,
      defaultJwtSvidTtl: 300,
      agentTtl: 3600,
      caKeyType: 'ec-p256',
      maxAttestedNodeInfoStaleness: 0,
      experimental: { caRotationCheckInterval: 10, entryCacheReloadInterval: 5 },
    });
    expect(config.plugins).toEqual({
      dataStore: { name: 'sql', databaseType: 'pglite', connectionString: 'memory://' },
      keyManager: { name: 'memory' },
    });
    expect(config.telemetry).toEqual({});
    expect(config.healthChecks).toEqual({
      listenerEnabled: false,
      bindAddress: 'localhost',
      bindPort: 80,
      livePath: '/live',
      readyPath: '/ready',
    });
    expect(warnings).toEqual([]);
  });

  it('names file, key and reason for a bad duration', () => {
    const text = MINIMAL_SERVER.replace('data_dir', 'ca_ttl = "1x"\n  data_dir');
    expect(serverError(text).message).toBe('server.conf: server.ca_ttl: invalid duration "1x"');
  });

  it('rejects a bare number as a duration', () => {
    const text = MINIMAL_SERVER.replace('data_dir', 'default_jwt_svid_ttl = 300\n  data_dir');
    expect(serverError(text).message).toMatch(
      /^server\.conf: server\.default_jwt_svid_ttl: expected a duration string/,
    );
  });

  it.each([
    ['top level', MINIMAL_SERVER + '\nfoo = 1\n', 'foo'],
    ['server', MINIMAL_SERVER.replace('data_dir', 'admin_ids = []\n  data_dir'), 'server.admin_ids'],
    [
      'server.experimental',
      MINIMAL_SERVER.replace('data_dir', 'experimental {\n events_based_cache = true\n}\n  data_dir'),
      'server.experimental.events_based_cache',
    ],
    [
      'plugins',
      MINIMAL_SERVER.replace('KeyManager "memory"', 'Notifier "k8sbundle" {}\n  KeyManager "memory"'),
      'plugins.Notifier',
    ],
    [
      'plugin_data',
      MINIMAL_SERVER.replace('connection_string', 'max_open_conns = 5\n      connection_string'),
      'plugins.DataStore.sql.plugin_data.max_open_conns',
    ],
    ['telemetry', MINIMAL_SERVER + '\ntelemetry {\n  Statsd = []\n}\n', 'telemetry.Statsd'],
    [
      'telemetry.Prometheus',
      MINIMAL_SERVER + '\ntelemetry {\n  Prometheus {\n    port = 1\n    tls = true\n  }\n}\n',
      'telemetry.Prometheus.tls',
    ],
    ['health_checks', MINIMAL_SERVER + '\nhealth_checks {\n  listen = true\n}\n', 'health_checks.listen'],
  ])('rejects an unknown key in %s', (_level, text, path) => {
    expect(serverError(text).message).toBe(`server.conf: ${path}: unknown key`);
  });

  it('reads NodeAttestor "x509pop" beside join_token, with its default agent path template', () => {
    const x509pop = (pluginData: string) =>
      MINIMAL_SERVER.replace(
        'KeyManager "memory"',
        `NodeAttestor "join_token" { plugin_data {} }\n  NodeAttestor "x509pop" { plugin_data { ${pluginData} } }\n  KeyManager "memory"`,
      );
    const { config } = parseServerConfig(x509pop('ca_bundle_path = "/ca.pem"'), 'server.conf');
    expect(config.plugins.nodeAttestor).toEqual({ name: 'join_token' });
    expect(config.plugins.x509popAttestor).toEqual({
      caBundlePaths: ['/ca.pem'],
      agentPathTemplate: '/{{ .PluginName }}/{{ .Fingerprint }}',
    });
    expect(serverError(x509pop('')).message).toBe(
      'server.conf: plugins.NodeAttestor.x509pop.plugin_data: one of ca_bundle_path or ca_bundle_paths must be configured',
    );
    expect(serverError(x509pop('ca_bundle_path = "/a"\n ca_bundle_paths = ["/b"]')).message).toBe(
      'server.conf: plugins.NodeAttestor.x509pop.plugin_data: only one of ca_bundle_path or ca_bundle_paths can be configured, not both',
    );
    expect(serverError(x509pop('ca_bundle_path = "/a"\n mode = "spiffe"')).message).toMatch(
      /x509pop\.plugin_data\.mode: only mode "external_pki" is supported/,
    );
    expect(
      serverError(x509pop('ca_bundle_path = "/a"\n agent_path_template = "/{{ .Nope }}"')).message,
    ).toMatch(/agent_path_template: failed to parse agent svid template: unsupported action/);
    expect(
      serverError(
        MINIMAL_SERVER.replace(
          'KeyManager "memory"',
          'NodeAttestor "tpm" { plugin_data {} }\n  KeyManager "memory"',
        ),
      ).message,
    ).toMatch(/unsupported NodeAttestor plugin \(supported: join_token, x509pop\)/);
  });

  it('rejects an unknown plugin implementation and says which are supported', () => {
    const error = serverError(MINIMAL_SERVER.replace('KeyManager "memory"', 'KeyManager "aws_kms"'));
    expect(error.message).toBe(
      'server.conf: plugins.KeyManager.aws_kms: unsupported KeyManager plugin (supported: memory, disk)',
    );
  });

  it.each(['sqlite3', 'mysql'])('rejects database_type %s and names the supported ones', (type) => {
    const error = serverError(MINIMAL_SERVER.replace('"pglite"', `"${type}"`));
    expect(error.message).toBe(
      `server.conf: plugins.DataStore.sql.plugin_data.database_type: unsupported database_type "${type}" (supported: postgres, pglite)`,
    );
  });

  it.each([
    ['70000', 'invalid port 70000 (must be 0-65535)'],
    ['"8o81"', 'invalid port "8o81" (must be 0-65535)'],
    ['-1', 'invalid port -1 (must be 0-65535)'],
    ['"http"', 'invalid port "http" (must be 0-65535)'],
  ])('rejects bind_port = %s', (value, reason) => {
    const text = MINIMAL_SERVER.replace('data_dir', `bind_port = ${value}\n  data_dir`);
    expect(serverError(text).message).toBe(`server.conf: server.bind_port: ${reason}`);
  });

  it('reports a missing trust_domain', () => {
    const error = serverError(MINIMAL_SERVER.replace('trust_domain = "example.org"', ''));
    expect(error.message).toBe('server.conf: server.trust_domain: must be configured');
    expect(error.issues).toEqual([{ path: 'server.trust_domain', message: 'must be configured' }]);
  });

  it('reports every problem, one line each', () => {
    const text = MINIMAL_SERVER.replace(
      'trust_domain = "example.org"',
      'ca_ttl = "soon"\n  bind_port = 99999',
    );
    const lines = serverError(text).message.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'server.conf: server.trust_domain: must be configured',
        'server.conf: server.ca_ttl: invalid duration "soon"',
        'server.conf: server.bind_port: invalid port 99999 (must be 0-65535)',
      ]),
    );
    expect(lines).toHaveLength(3);
  });

  it.each([
    ['Example.org', 'lowercase letters'],
    ['example.org:8080', 'lowercase letters'],
    ['', 'trust domain is missing'],
  ])('rejects trust domain %j', (td, reason) => {
    const error = serverError(MINIMAL_SERVER.replace('"example.org"', JSON.stringify(td)));
    expect(error.message).toContain('server.conf: server.trust_domain: invalid trust domain');
    expect(error.message).toContain(reason);
  });

  it('accepts a trust domain written as a SPIFFE ID', () => {
    const { config } = parseServerConfig(
      MINIMAL_SERVER.replace('"example.org"', '"spiffe://example.org"'),
      'x',
    );
    expect(config.server.trustDomain).toBe('example.org');
  });

  it('reports an HCL syntax error with its line', () => {
    const error = serverError('server {\n  trust_domain = example.org\n}\n');
    expect(error.message).toBe(
      'server.conf: HCL syntax error at line 2, column 18: Unknown token: 2:18 IDENT example.org',
    );
    expect(serverError('server {\n  data_dir = "x"\n').message).toMatch(
      /^server\.conf: HCL syntax error at line 3, /,
    );
  });

  it('rejects a block defined twice', () => {
    const error = serverError(
      MINIMAL_SERVER.replace('KeyManager "memory"', 'KeyManager "memory" {}\n  KeyManager "memory"'),
    );
    expect(error.message).toBe('server.conf: plugins.KeyManager.memory: defined more than once');
  });

  it('rejects a key given twice in one block, naming both lines', () => {
    const twice = MINIMAL_SERVER.replace(
      'trust_domain = "example.org"',
      'trust_domain = "example.org"\n  trust_domain = "evil.example"',
    );
    const error = serverError(twice);
    expect(error.message).toMatch(
      /^server\.conf: server\.trust_domain: defined more than once \(line \d+ and line \d+\)$/,
    );
    // The same key in two different blocks, in a list, in a comment or a string is not a repeat.
    const { config } = parseServerConfig(
      MINIMAL_SERVER.replace(
        'trust_domain = "example.org"',
        'trust_domain = "example.org" # trust_domain = "x"\n  # trust_domain = "y"\n  /* trust_domain = "z" */',
      ),
      'x',
    );
    expect(config.server.trustDomain).toBe('example.org');
  });

  it('refuses blocks nested too deep with the line, instead of exhausting the stack', () => {
    const deep = `${'a {\n'.repeat(400)}${'}\n'.repeat(400)}`;
    const error = serverError(`${MINIMAL_SERVER}\nx ${deep}`);
    expect(error.message).toMatch(/^server\.conf: blocks nested more than 32 deep at line \d+$/);
  });

  it('cuts a long value in the error message, and refuses a file of megabytes without echoing it', () => {
    const long = 'x'.repeat(512 * 1024);
    const error = serverError(MINIMAL_SERVER.replace('"example.org"', JSON.stringify(long)));
    expect(error.message.length).toBeLessThan(1000);
    expect(error.message).toMatch(/^server\.conf: server\.trust_domain: .*… \(\d+ more characters\)$/s);
    const huge = 'x'.repeat(10 * 1024 * 1024);
    expect(serverError(MINIMAL_SERVER.replace('"example.org"', JSON.stringify(huge))).message).toBe(
      'server.conf: is 10.0 MiB; a config file may be at most 1 MiB',
    );
  });

  it('requires exactly one KeyManager', () => {
    const twoManagers = MINIMAL_SERVER.replace(
      'KeyManager "memory"',
      'KeyManager "disk" { plugin_data { keys_path = "k" } }\n  KeyManager "memory"',
    );
    expect(serverError(twoManagers).message).toBe(
      'server.conf: plugins.KeyManager: exactly one KeyManager plugin must be configured, found 2',
    );
    const none = MINIMAL_SERVER.replace(/KeyManager "memory" \{\s*plugin_data \{\}\s*\}/, '');
    expect(serverError(none).message).toBe('server.conf: plugins.KeyManager: must be configured');
  });

  it('rejects a default X509-SVID TTL longer than the CA TTL', () => {
    const text = MINIMAL_SERVER.replace(
      'data_dir',
      'ca_ttl = "2h"\n  default_x509_svid_ttl = "3h"\n  data_dir',
    );
    expect(serverError(text).message).toBe(
      'server.conf: server.default_x509_svid_ttl: 3h is longer than ca_ttl (2h)',
    );
  });

  it('warns when a TTL exceeds ca_ttl / 6, as SPIRE does', () => {
    const text = MINIMAL_SERVER.replace(
      'data_dir',
      'ca_ttl = "12h"\n  default_x509_svid_ttl = "3h"\n  agent_ttl = "1h"\n  data_dir',
    );
    const { warnings } = parseServerConfig(text, 'server.conf');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('default_x509_svid_ttl (3h) exceeds 2h');
    expect(warnings[0]).toContain('ca_ttl to 18h or more');
  });

  it('lets command-line flags supply or override file values', () => {
    const withoutTd = MINIMAL_SERVER.replace('trust_domain = "example.org"', '');
    const { config } = parseServerConfig(withoutTd, 'server.conf', {
      overrides: {
        trustDomain: 'cli.org',
        socketPath: '/run/admin.sock',
        logLevel: 'error',
        serverPort: 9000,
      },
    });
    expect(config.server).toMatchObject({
      trustDomain: 'cli.org',
      socketPath: '/run/admin.sock',
      logLevel: 'error',
      bindPort: 9000,
    });
    expect(serverError(MINIMAL_SERVER, { trustDomain: 'BAD' }).message).toContain('server.trust_domain');
  });

  it('expands environment variables only when asked', () => {
    const text = MINIMAL_SERVER.replace('"/var/lib/spire"', '"${DATA}/spire"');
    const expanded = parseServerConfig(text, 'server.conf', { expandEnv: true, env: { DATA: '/srv' } });
    expect(expanded.config.server.dataDir).toBe('/srv/spire');
    expect(parseServerConfig(text, 'server.conf').config.server.dataDir).toBe('${DATA}/spire');
    expect(expandEnv('$A-${B}-$C', { A: '1', B: '2' })).toBe('1-2-');
  });
});

describe('agent config', () => {
  it('normalizes a SPIRE-shaped agent.conf', () => {
    const { config } = parseAgentConfig(SPIRE_LIKE_AGENT, 'agent.conf');
    expect(config).toEqual({
      agent: {
        dataDir: './.data',
        logLevel: 'warn',
        serverAddress: '127.0.0.1',
        serverPort: 8081,
        socketPath: '/tmp/spire-agent/public/api.sock',
        trustBundlePath: './conf/agent/dummy_root_ca.crt',
        trustDomain: 'example.org',
        joinToken: 'abc',
        insecureBootstrap: false,
        rebootstrapMode: 'never',
        rebootstrapDelay: 600,
        jwtSvidCacheSize: 1000,
        experimental: { syncInterval: 1 },
      },
      plugins: {
        keyManager: { name: 'disk', directory: './.data' },
        nodeAttestor: { name: 'join_token' },
        workloadAttestor: { name: 'unix' },
      },
      telemetry: {},
      healthChecks: {
        listenerEnabled: false,
        bindAddress: 'localhost',
        bindPort: 80,
        livePath: '/live',
        readyPath: '/ready',
      },
    });
  });

  it('reads NodeAttestor "x509pop" and requires its key and certificate paths', () => {
    const x509pop = (pluginData: string) =>
      MINIMAL_AGENT.replace(
        'NodeAttestor "join_token" { plugin_data {} }',
        `NodeAttestor "x509pop" { plugin_data { ${pluginData} } }`,
      );
    const { config } = parseAgentConfig(
      x509pop('private_key_path = "/k.pem"\n certificate_path = "/c.pem"'),
      'agent.conf',
    );
    expect(config.plugins.nodeAttestor).toEqual({
      name: 'x509pop',
      privateKeyPath: '/k.pem',
      certificatePath: '/c.pem',
    });
    expect(agentError(x509pop('certificate_path = "/c.pem"')).message).toBe(
      'agent.conf: plugins.NodeAttestor.x509pop.plugin_data.private_key_path: private_key_path is required',
    );
    expect(agentError(x509pop('private_key_path = "/k.pem"')).message).toBe(
      'agent.conf: plugins.NodeAttestor.x509pop.plugin_data.certificate_path: certificate_path is required',
    );
  });

  it("applies SPIRE's defaults", () => {
    const { config } = parseAgentConfig(MINIMAL_AGENT, 'agent.conf');
    expect(config.agent).toEqual({
      dataDir: '.',
      logLevel: 'info',
      serverAddress: 'localhost',
      serverPort: 8081,
      socketPath: '/tmp/spire-agent/public/api.sock',
      trustBundlePath: '/b.pem',
      trustDomain: 'example.org',
      insecureBootstrap: false,
      rebootstrapMode: 'never',
      rebootstrapDelay: 600,
      jwtSvidCacheSize: 1000,
      experimental: { syncInterval: 5 },
    });
    expect(config.plugins.workloadAttestor).toBeUndefined();
  });

  it('takes the join token and server address from the command line', () => {
    const { config } = parseAgentConfig(MINIMAL_AGENT, 'agent.conf', {
      overrides: { joinToken: 'tok', serverAddress: 'lb.local', serverPort: 9443, trustBundle: '/cli.pem' },
    });
    expect(config.agent).toMatchObject({
      joinToken: 'tok',
      serverAddress: 'lb.local',
      serverPort: 9443,
      trustBundlePath: '/cli.pem',
    });
  });

  it('refuses insecure_bootstrap together with a trust bundle, and neither', () => {
    expect(agentError(MINIMAL_AGENT.replace('agent {', 'agent {\n  insecure_bootstrap = true')).message).toBe(
      'agent.conf: agent.insecure_bootstrap: only one of insecure_bootstrap or trust_bundle_path can be specified, not both',
    );
    expect(agentError(MINIMAL_AGENT.replace('trust_bundle_path = "/b.pem"', '')).message).toBe(
      'agent.conf: agent.trust_bundle_path: must be configured unless insecure_bootstrap is set',
    );
    const insecure = MINIMAL_AGENT.replace('trust_bundle_path = "/b.pem"', 'insecure_bootstrap = true');
    expect(parseAgentConfig(insecure, 'agent.conf').config.agent.insecureBootstrap).toBe(true);
  });

  it.each([
    ['agent', MINIMAL_AGENT.replace('agent {', 'agent {\n  sds = 1'), 'agent.sds: unknown key'],
    [
      'agent.experimental',
      MINIMAL_AGENT.replace(
        'agent {',
        'agent {\n  experimental {\n    use_sync_authorized_entries = true\n  }',
      ),
      'agent.experimental.use_sync_authorized_entries: unknown key',
    ],
    [
      'sync_interval',
      MINIMAL_AGENT.replace('agent {', 'agent {\n  experimental {\n    sync_interval = "5"\n  }'),
      'agent.experimental.sync_interval: invalid duration "5"',
    ],
    [
      'WorkloadAttestor',
      MINIMAL_AGENT.replace('plugins {', 'plugins {\n  WorkloadAttestor "k8s" { plugin_data {} }'),
      'plugins.WorkloadAttestor.k8s: unsupported WorkloadAttestor plugin (supported: unix)',
    ],
    [
      'server_port',
      MINIMAL_AGENT.replace('server_port = 8081', 'server_port = 65536'),
      'agent.server_port: invalid port 65536 (must be 0-65535)',
    ],
    [
      'server_address',
      MINIMAL_AGENT.replace('server_address = "localhost"', ''),
      'agent.server_address: must be configured',
    ],
    [
      'disk directory',
      MINIMAL_AGENT.replace('KeyManager "memory" { plugin_data {} }', 'KeyManager "disk" { plugin_data {} }'),
      'plugins.KeyManager.disk.plugin_data.directory: must be configured',
    ],
  ])('names the key and reason for a bad %s', (_what, text, expected) => {
    expect(agentError(text).message).toBe(`agent.conf: ${expected}`);
  });
});

describe('loading from files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tspire-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads server and agent files', async () => {
    await writeFile(join(dir, 'server.conf'), MINIMAL_SERVER);
    await writeFile(join(dir, 'agent.conf'), MINIMAL_AGENT);
    const server = await loadServerConfig(join(dir, 'server.conf'), { overrides: { dataDir: '/override' } });
    expect(server.config.server.dataDir).toBe('/override');
    const agent = await loadAgentConfig(join(dir, 'agent.conf'));
    expect(agent.config.agent.serverAddress).toBe('localhost');
  });

  it('names the file in every error', async () => {
    const file = join(dir, 'broken.conf');
    await writeFile(file, MINIMAL_SERVER.replace('"pglite"', '"sqlite3"'));
    await expect(loadServerConfig(file)).rejects.toThrow(
      `${file}: plugins.DataStore.sql.plugin_data.database_type:`,
    );
    await expect(loadAgentConfig(join(dir, 'missing.conf'))).rejects.toThrow(
      /missing\.conf: could not find config file .*missing\.conf: please use the -config flag/,
    );
  });

  it('decodes nested blocks into plain objects', () => {
    expect(decodeHcl('a { b "c" { d = 1 } }\ne = ["x", "y"]\n', 'f')).toEqual({
      a: { b: { c: { d: 1 } } },
      e: ['x', 'y'],
    });
  });
});

describe("SPIRE's failure knobs in server.conf and agent.conf", () => {
  const server = (line: string) => MINIMAL_SERVER.replace('server {', `server {\n  ${line}`);
  const agent = (lines: string) => MINIMAL_AGENT.replace('agent {', `agent {\n  ${lines}`);

  it('takes max_attested_node_info_staleness as a duration, 0 (off) by default', () => {
    expect(parseServerConfig(MINIMAL_SERVER, 'server.conf').config.server.maxAttestedNodeInfoStaleness).toBe(
      0,
    );
    expect(
      parseServerConfig(server('max_attested_node_info_staleness = "30s"'), 'server.conf').config.server
        .maxAttestedNodeInfoStaleness,
    ).toBe(30);
    expect(serverError(server('max_attested_node_info_staleness = "soon"')).message).toBe(
      'server.conf: server.max_attested_node_info_staleness: invalid duration "soon"',
    );
    expect(serverError(server('max_attested_node_info_staleness = "-1s"')).message).toBe(
      'server.conf: server.max_attested_node_info_staleness: must not be negative',
    );
  });

  it('takes cache_reload_interval where SPIRE does, under experimental, and not in the server block', () => {
    expect(serverError(server('cache_reload_interval = "1s"')).message).toBe(
      'server.conf: server.cache_reload_interval: unknown key',
    );
  });

  it("accepts SPIRE's ratelimit block with boolean attestation and signing, and nothing else in it", () => {
    expect(() =>
      parseServerConfig(
        server('ratelimit {\n    attestation = false\n    signing = true\n  }'),
        'server.conf',
      ),
    ).not.toThrow();
    expect(serverError(server('ratelimit {\n    attestation = "sometimes"\n  }')).message).toBe(
      'server.conf: server.ratelimit.attestation: expected true or false',
    );
    expect(serverError(server('ratelimit {\n    registration = false\n  }')).message).toBe(
      'server.conf: server.ratelimit.registration: unknown key',
    );
  });

  it("defaults the rebootstrap knobs as SPIRE does and takes SPIRE's modes", () => {
    const { agent: defaults } = parseAgentConfig(MINIMAL_AGENT, 'agent.conf').config;
    expect(defaults.rebootstrapMode).toBe('never');
    expect(defaults.rebootstrapDelay).toBe(600);
    expect(defaults.retryBootstrap).toBeUndefined();
    const set = parseAgentConfig(agent('rebootstrap_mode = "auto"\n  rebootstrap_delay = "1m"'), 'agent.conf')
      .config.agent;
    expect(set).toMatchObject({ rebootstrapMode: 'auto', rebootstrapDelay: 60 });
    expect(parseAgentConfig(agent('rebootstrap_mode = ""'), 'agent.conf').config.agent.rebootstrapMode).toBe(
      'never',
    );
    expect(parseAgentConfig(agent('retry_bootstrap = false'), 'agent.conf').config.agent.retryBootstrap).toBe(
      false,
    );
  });

  it.each([
    [
      'rebootstrap_mode = "sometimes"',
      'agent.rebootstrap_mode: unknown rebootstrap mode specified: sometimes',
    ],
    ['rebootstrap_delay = "later"', 'agent.rebootstrap_delay: invalid duration "later"'],
    [
      'rebootstrap_mode = "auto"\n  retry_bootstrap = true',
      'agent.retry_bootstrap: you can not set retry_bootstrap when using rebootstrap_mode',
    ],
  ])('refuses %s', (lines, expected) => {
    expect(agentError(agent(lines)).message).toBe(`agent.conf: ${expected}`);
  });

  it('refuses rebootstrapping with insecure_bootstrap, as SPIRE does', () => {
    const text = MINIMAL_AGENT.replace(
      'trust_bundle_path = "/b.pem"',
      'insecure_bootstrap = true\n  rebootstrap_mode = "always"',
    );
    expect(agentError(text).message).toBe(
      'agent.conf: agent.rebootstrap_mode: insecure_bootstrap option can not be used with rebootstrapping',
    );
  });
});
