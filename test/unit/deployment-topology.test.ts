import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadTopology,
  parseTopology,
  topologyWarnings,
  TopologyError,
} from '../../deployment/topology/topology.js';
import { renderAgentConfig, renderServerConfig } from '../../deployment/implementation/spire-configs.js';
import { spireKnobChoices } from '../../deployment/spire-knob-choices.js';
import { parseAgentConfig, parseServerConfig } from '../../identity-core/cli/hcl-config.js';

const topologies = fileURLToPath(new URL('../../topologies/', import.meta.url));

function issuesOf(document: unknown): string[] {
  try {
    parseTopology(document, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(TopologyError);
    return (error as TopologyError).issues;
  }
  throw new Error('expected the topology to be refused');
}

describe('topology files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-topo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the shipped demo and reference topologies with durations in seconds', async () => {
    const demo = await loadTopology(join(topologies, 'demo.yaml'));
    expect(demo).toMatchObject({
      name: 'demo',
      implementation: 'tspire',
      ttls: { x509Svid: 20, jwtSvid: 20, agentSvid: 300, ca: 10_800, downstreamCa: 1800 },
      syncInterval: 1,
      upstream: { servers: 2, loadBalancer: true, datastore: 'managed', agents: 1, workloadsPerAgent: 2 },
      downstreams: [{ name: 'east', agents: 1, workloadsPerAgent: 2 }],
    });
    // Every CA in the demo lives six times what it signs: no rotation caps anything under it.
    expect(topologyWarnings(demo)).toEqual([]);
    expect(
      topologyWarnings({ ...demo, ttls: { ...demo.ttls, agentSvid: 300, ca: 600, downstreamCa: 300 } }),
    ).toEqual([
      'ttls.downstreamCa exceeds a sixth of ttls.ca (100 s): the upstream may sign downstreams shorter intermediates than asked, which a cut-off downstream outlives less',
      'ttls.agentSvid exceeds a sixth of ttls.downstreamCa (50 s): a CA rotation may issue agents shorter SVIDs than asked',
    ]);
    const reference = await loadTopology(join(topologies, 'reference.yaml'));
    expect(reference.upstream).toMatchObject({ servers: 3, loadBalancer: true });
    expect(reference.ttls).toEqual({
      x509Svid: 3600,
      jwtSvid: 300,
      agentSvid: 3600,
      ca: 86_400,
      downstreamCa: 86_400,
    });
    expect(reference.downstreams.map((d) => d.name)).toEqual(['prod', 'staging']);
  });

  it('loads the real-SPIRE and mixed variants of the demo: its shape, their implementations', async () => {
    const demo = await loadTopology(join(topologies, 'demo.yaml'));
    const shape = (t: typeof demo) => ({
      ttls: t.ttls,
      syncInterval: t.syncInterval,
      upstream: { ...t.upstream, implementation: undefined },
      downstreams: t.downstreams.map((d) => ({ ...d, implementation: undefined })),
      spire: t.spire,
    });
    const real = await loadTopology(join(topologies, 'demo-spire.yaml'));
    expect(shape(real)).toEqual(shape(demo));
    expect([real.upstream.implementation, ...real.downstreams.map((d) => d.implementation)]).toEqual([
      'spire',
      'spire',
    ]);
    const mixed = await loadTopology(join(topologies, 'mixed.yaml'));
    expect(shape(mixed)).toEqual(shape(demo));
    expect([mixed.upstream.implementation, ...mixed.downstreams.map((d) => d.implementation)]).toEqual([
      'spire',
      'tspire',
    ]);
  });

  it('fills SPIRE defaults for what a minimal file leaves out', () => {
    expect(parseTopology({ name: 'tiny', trustDomain: 'td' })).toEqual({
      name: 'tiny',
      trustDomain: 'td',
      implementation: 'tspire',
      ttls: { x509Svid: 3600, jwtSvid: 300, agentSvid: 3600, ca: 86_400, downstreamCa: 86_400 },
      syncInterval: 5,
      upstream: {
        implementation: 'tspire',
        servers: 1,
        loadBalancer: false,
        datastore: 'embedded',
        readReplica: false,
        agents: 0,
        workloadsPerAgent: 1,
      },
      downstreams: [],
      spire: {
        server: { max_attested_node_info_staleness: 0, cache_reload_interval: 5 },
        agent: { rebootstrap_mode: 'never', rebootstrap_delay: 600 },
      },
    });
  });

  it("gives each server group the topology's implementation unless the group names its own", () => {
    const whole = parseTopology({
      name: 'x',
      trustDomain: 'td',
      implementation: 'spire',
      downstreams: [{ name: 'a' }],
    });
    expect(whole.implementation).toBe('spire');
    expect(whole.upstream.implementation).toBe('spire');
    expect(whole.downstreams[0]!.implementation).toBe('spire');
    const realUpstream = parseTopology({
      name: 'x',
      trustDomain: 'td',
      upstream: { implementation: 'spire' },
      downstreams: [{ name: 'a' }, { name: 'b', implementation: 'spire' }],
    });
    expect(realUpstream.implementation).toBe('tspire');
    expect(realUpstream.upstream.implementation).toBe('spire');
    expect(realUpstream.downstreams.map((d) => d.implementation)).toEqual(['tspire', 'spire']);
    const bundledUpstream = parseTopology({
      name: 'x',
      trustDomain: 'td',
      implementation: 'spire',
      upstream: { implementation: 'tspire' },
      downstreams: [{ name: 'a' }],
    });
    expect(bundledUpstream.upstream.implementation).toBe('tspire');
    expect(bundledUpstream.downstreams[0]!.implementation).toBe('spire');
  });

  it("takes the agents' SVID TTL from the X509-SVID TTL unless given, as SPIRE does", () => {
    expect(parseTopology({ name: 'x', trustDomain: 'td', ttls: { x509Svid: '90s' } }).ttls.agentSvid).toBe(
      90,
    );
    expect(
      parseTopology({ name: 'x', trustDomain: 'td', ttls: { x509Svid: '90s', agentSvid: '1h' } }).ttls
        .agentSvid,
    ).toBe(3600);
    expect(issuesOf({ name: 'x', trustDomain: 'td', ttls: { agentSvid: '1x' } })).toEqual([
      expect.stringMatching(/^ttls\.agentSvid: invalid duration "1x"/),
    ]);
    expect(
      issuesOf({
        name: 'x',
        trustDomain: 'td',
        ttls: { ca: '1h', downstreamCa: '1h', agentSvid: '2h', x509Svid: '5m' },
      }),
    ).toEqual([expect.stringMatching(/^ttls\.agentSvid: longer than the CA TTL/)]);
    expect(
      issuesOf({
        name: 'x',
        trustDomain: 'td',
        ttls: { downstreamCa: '10m', agentSvid: '20m', x509Svid: '1m' },
        downstreams: [{ name: 'a' }],
      }),
    ).toEqual([expect.stringMatching(/^ttls\.agentSvid: longer than the downstream CA TTL/)]);
  });

  it('runs agents and workloads directly under the upstream servers when asked, none by default', () => {
    const t = parseTopology({ name: 'x', trustDomain: 'td', upstream: { agents: 3, workloadsPerAgent: 4 } });
    expect(t.upstream).toMatchObject({ agents: 3, workloadsPerAgent: 4 });
    expect(
      parseTopology({ name: 'x', trustDomain: 'td', upstream: { agents: 2 } }).upstream.workloadsPerAgent,
    ).toBe(1);
    expect(
      issuesOf({ name: 'x', trustDomain: 'td', upstream: { agents: 21, workloadsPerAgent: -1 } }),
    ).toEqual([
      expect.stringMatching(/^upstream\.agents: must be at most 20/),
      expect.stringMatching(/^upstream\.workloadsPerAgent: must be at least 0/),
    ]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { agents: 1.5 } })).toEqual([
      expect.stringMatching(/^upstream\.agents: expected a whole number/),
    ]);
  });

  it("refuses a downstream named 'upstream': the upstream servers' group already has that name", () => {
    expect(
      issuesOf({ name: 'x', trustDomain: 'td', downstreams: [{ name: 'east' }, { name: 'upstream' }] }),
    ).toEqual([
      expect.stringMatching(/^downstreams\.1\.name: "upstream" names the upstream servers' own group/),
    ]);
  });

  it('sets up a read replica only for a managed datastore', () => {
    expect(
      parseTopology({ name: 'x', trustDomain: 'td', upstream: { datastore: 'managed', readReplica: true } })
        .upstream.readReplica,
    ).toBe(true);
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { readReplica: true } })).toEqual([
      expect.stringMatching(
        /^upstream\.readReplica: a read replica is set up only for the deployment's own PostgreSQL/,
      ),
    ]);
    expect(
      issuesOf({ name: 'x', trustDomain: 'td', upstream: { datastore: 'managed', readReplica: 'yes' } }),
    ).toEqual([expect.stringMatching(/^upstream\.readReplica: expected true or false/)]);
  });

  it('accepts a managed datastore, alone or shared by HA servers, and names it in datastore errors', () => {
    const ha = parseTopology({
      name: 'x',
      trustDomain: 'td',
      upstream: { servers: 2, loadBalancer: true, datastore: 'managed' },
    });
    expect(ha.upstream).toMatchObject({ servers: 2, datastore: 'managed' });
    expect(
      parseTopology({ name: 'x', trustDomain: 'td', upstream: { datastore: 'managed' } }).upstream.datastore,
    ).toBe('managed');
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { datastore: 'mysql' } })).toEqual([
      expect.stringMatching(/^upstream\.datastore: expected "embedded", "managed" or \{ postgres/),
    ]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { servers: 2 } })).toEqual([
      expect.stringMatching(/^upstream\.datastore: 2 servers share one datastore.*use "managed"/),
    ]);
    const external = parseTopology({
      name: 'x',
      trustDomain: 'td',
      upstream: { servers: 3, datastore: { postgres: 'postgres://h/db' } },
    });
    expect(external.upstream.datastore).toEqual({ postgres: 'postgres://h/db' });
  });

  it('names the path and the reason of every bad field', () => {
    const issues = issuesOf({
      name: 'Bad Name',
      trustDomain: 'td',
      ttls: { x509Svid: '1x', ca: '1h', downstreamCa: '2h' },
      upstream: { servers: 3, datastore: 'embedded', extra: 1 },
      downstreams: [{ name: 'a' }, { name: 'a', agents: 0 }],
      syncInterval: -1,
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name: lowercase/),
        expect.stringMatching(/^ttls\.x509Svid: invalid duration "1x"/),
        expect.stringMatching(/^upstream: .*extra/),
        expect.stringMatching(/^downstreams\.1\.agents: must be at least 1/),
        expect.stringMatching(/^syncInterval: invalid duration/),
      ]),
    );
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { servers: 3 } })).toEqual([
      expect.stringMatching(/^upstream\.datastore: 3 servers share one datastore/),
    ]);
    expect(
      issuesOf({ name: 'x', trustDomain: 'td', ttls: { ca: '1h', downstreamCa: '2h' }, downstreams: [] }),
    ).toEqual([expect.stringMatching(/^ttls\.downstreamCa: longer than the CA TTL/)]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', downstreams: [{ name: 'a' }, { name: 'a' }] })).toEqual([
      expect.stringMatching(/^downstreams\.1\.name: duplicate downstream name "a"/),
    ]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', implementation: 'real' })).toEqual([
      expect.stringMatching(/^implementation: expected "tspire" .* or "spire"/),
    ]);
    expect(
      issuesOf({
        name: 'x',
        trustDomain: 'td',
        upstream: { implementation: 'go' },
        downstreams: [{ name: 'a', implementation: 1 }],
      }),
    ).toEqual([
      expect.stringMatching(/^upstream\.implementation: expected "tspire"/),
      expect.stringMatching(/^downstreams\.0\.implementation: expected "tspire"/),
    ]);
    expect(issuesOf('just a string')).toHaveLength(1);
  });

  it('reports unreadable and malformed files with the file name', async () => {
    await expect(loadTopology(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml.*ENOENT/s);
    writeFileSync(join(dir, 'broken.yaml'), 'name: [unclosed\n');
    await expect(loadTopology(join(dir, 'broken.yaml'))).rejects.toThrow(/broken\.yaml.*not valid YAML/s);
  });

  it('takes an implementation override, which the schema validates as if the file said it', async () => {
    const path = join(dir, 'plain.yaml');
    writeFileSync(path, 'name: plain\ntrustDomain: td\nimplementation: tspire\n');
    expect((await loadTopology(path, { implementation: 'tspire' })).implementation).toBe('tspire');
    const refused = await loadTopology(path, { implementation: 'kube' as 'tspire' }).catch(
      (error: TopologyError) => error,
    );
    expect(refused).toBeInstanceOf(TopologyError);
    expect((refused as TopologyError).source).toBe(`${path} (implementation: kube)`);
    expect((refused as TopologyError).issues).toEqual([
      expect.stringMatching(/^implementation: expected "tspire"/),
    ]);
    // A document that is no mapping is refused by the schema, override or not.
    writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
    await expect(loadTopology(join(dir, 'list.yaml'), { implementation: 'tspire' })).rejects.toThrow(
      TopologyError,
    );
  });

  it("puts every server group of a mixed topology on the override's implementation", async () => {
    const path = join(dir, 'mixed.yaml');
    writeFileSync(
      path,
      'name: mixed\ntrustDomain: td\nupstream:\n  implementation: spire\n  datastore: managed\n' +
        'downstreams:\n  - name: east\n    implementation: tspire\n',
    );
    const mixed = await loadTopology(path);
    expect([mixed.upstream.implementation, mixed.downstreams[0]!.implementation]).toEqual([
      'spire',
      'tspire',
    ]);
    for (const implementation of ['tspire', 'spire'] as const) {
      const whole = await loadTopology(path, { implementation });
      expect([
        whole.implementation,
        whole.upstream.implementation,
        whole.downstreams[0]!.implementation,
      ]).toEqual([implementation, implementation, implementation]);
    }
  });

  it('warns about TTLs that the 10 s backdating or CA rotation will distort', () => {
    const t = parseTopology({
      name: 'x',
      trustDomain: 'td',
      ttls: { x509Svid: '10s', jwtSvid: '10s', ca: '30s', downstreamCa: '30s' },
    });
    expect(topologyWarnings(t)).toEqual([
      expect.stringMatching(/half spent when issued/),
      expect.stringMatching(/a sixth of ttls\.ca/),
    ]);
    const slowSync = parseTopology({
      name: 'x',
      trustDomain: 'td',
      ttls: { x509Svid: '30s' },
      syncInterval: '20s',
    });
    expect(topologyWarnings(slowSync)).toEqual([expect.stringMatching(/expire before they are renewed/)]);
    // Downstream workloads and agents get SVIDs signed by the intermediate: its TTL is the one that bounds.
    const nested = parseTopology({
      name: 'x',
      trustDomain: 'td',
      ttls: { x509Svid: '2m', agentSvid: '5m', ca: '24h', downstreamCa: '6m' },
      downstreams: [{ name: 'a' }],
    });
    expect(topologyWarnings(nested)).toEqual([
      'ttls.x509Svid exceeds a sixth of ttls.downstreamCa (60 s): a CA rotation may issue shorter SVIDs than asked',
      expect.stringMatching(/^ttls\.agentSvid exceeds a sixth of ttls\.downstreamCa \(60 s\)/),
    ]);
    // An agent TTL equal to the X509-SVID TTL (the default) does not repeat the X509-SVID warning.
    expect(
      topologyWarnings(parseTopology({ name: 'x', trustDomain: 'td', ttls: { x509Svid: '5h', ca: '24h' } })),
    ).toEqual([expect.stringMatching(/^ttls\.x509Svid exceeds a sixth of ttls\.ca \(14400 s\)/)]);
  });
});

describe("a topology's spire: knobs", () => {
  const base = { name: 'x', trustDomain: 'td' };

  it("takes SPIRE's names and durations, 0 turning the node cache off", () => {
    const t = parseTopology({
      ...base,
      spire: {
        server: { max_attested_node_info_staleness: '1m', cache_reload_interval: '2s' },
        agent: { rebootstrap_mode: 'never', rebootstrap_delay: '5m', retry_bootstrap: false },
      },
    });
    expect(t.spire).toEqual({
      server: { max_attested_node_info_staleness: 60, cache_reload_interval: 2 },
      agent: { rebootstrap_mode: 'never', rebootstrap_delay: 300, retry_bootstrap: false },
    });
    expect(
      parseTopology({ ...base, spire: { server: { max_attested_node_info_staleness: '0s' } } }).spire.server
        .max_attested_node_info_staleness,
    ).toBe(0);
  });

  it('refuses bad values and unknown knobs, naming each', () => {
    expect(
      issuesOf({
        ...base,
        spire: {
          server: {
            max_attested_node_info_staleness: '-5s',
            cache_reload_interval: 0,
            full_cache_reload: '1m',
          },
          agent: { rebootstrap_mode: 'sometimes', rebootstrap_delay: 'soon', retry_bootstrap: 'yes' },
        },
      }),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spire\.server\.max_attested_node_info_staleness: invalid duration "-5s"/),
        expect.stringMatching(/^spire\.server\.cache_reload_interval: invalid duration 0/),
        expect.stringMatching(/^spire\.server: .*full_cache_reload/),
        expect.stringMatching(/^spire\.agent\.rebootstrap_mode: expected "never", "auto" or "always"/),
        expect.stringMatching(/^spire\.agent\.rebootstrap_delay: invalid duration "soon"/),
        expect.stringMatching(/^spire\.agent\.retry_bootstrap: expected true or false/),
      ]),
    );
  });

  it("refuses what SPIRE's agent refuses: retry_bootstrap beside a rebootstrap mode, and always with join_token", () => {
    expect(
      issuesOf({ ...base, spire: { agent: { rebootstrap_mode: 'auto', retry_bootstrap: true } } }),
    ).toEqual([
      expect.stringMatching(/^spire\.agent\.retry_bootstrap: SPIRE refuses retry_bootstrap together/),
    ]);
    expect(issuesOf({ ...base, spire: { agent: { rebootstrap_mode: 'always' } } })).toEqual([
      expect.stringMatching(
        /^spire\.agent\.rebootstrap_mode: rebootstrap_mode "always" needs a node attestor/,
      ),
    ]);
  });

  it('warns that "auto" is disabled for join_token agents', () => {
    const t = parseTopology({ ...base, spire: { agent: { rebootstrap_mode: 'auto' } } });
    expect(topologyWarnings(t)).toEqual([
      expect.stringMatching(/rebootstrap_mode "auto": join_token agents cannot re-attest/),
    ]);
  });

  it('renders the knobs into server.conf and agent.conf as SPIRE spells them, which both configs accept', () => {
    const t = parseTopology({
      ...base,
      spire: {
        server: { max_attested_node_info_staleness: '30s', cache_reload_interval: '2s' },
        agent: { retry_bootstrap: false },
      },
    });
    const { serverKnobs, agentKnobs } = spireKnobChoices(t.spire);
    const serverConf = renderServerConfig({
      trustDomain: 'td',
      bindPort: 8081,
      socketPath: '/tmp/s.sock',
      dataDir: '/tmp/data',
      database: { type: 'pglite', directory: '/tmp/db' },
      caTtl: '24h',
      x509SvidTtl: '1h',
      jwtSvidTtl: '5m',
      logLevel: 'INFO',
      ...serverKnobs,
    });
    expect(serverConf).toContain('  max_attested_node_info_staleness = "30s"\n');
    expect(serverConf).toContain('  experimental {\n    cache_reload_interval = "2s"\n  }\n');
    expect(parseServerConfig(serverConf, 'server.conf').config.server).toMatchObject({
      maxAttestedNodeInfoStaleness: 30,
      experimental: { entryCacheReloadInterval: 2 },
    });
    const agentConf = renderAgentConfig({
      trustDomain: 'td',
      serverPort: 8081,
      socketPath: '/tmp/a.sock',
      dataDir: '/tmp/agent',
      trustBundlePath: '/tmp/b.pem',
      syncInterval: '5s',
      logLevel: 'INFO',
      ...agentKnobs,
    });
    expect(agentConf).toContain(
      '  rebootstrap_mode = "never"\n  rebootstrap_delay = "600s"\n  retry_bootstrap = false\n',
    );
    expect(parseAgentConfig(agentConf, 'agent.conf').config.agent).toMatchObject({
      rebootstrapMode: 'never',
      rebootstrapDelay: 600,
      retryBootstrap: false,
    });
    // A plan written before topologies had knobs renders SPIRE's defaults by leaving them out.
    expect(spireKnobChoices(undefined)).toEqual({});
  });
});
