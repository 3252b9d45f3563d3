import 'reflect-metadata';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unary } from '../../identity-core/client/grpc-call.js';
import type { BatchCreateEntryResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { Entry } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import { startProcess, type ManagedProcess } from '../../deployment/host/managed-process.js';
import { IdentityStack, runCommand } from '../../deployment/stack/identity-stack.js';
import { makeRunDir } from '../support/run-dir.js';
import { pinnedTool } from '../support/tools.js';
import { ok, waitFor } from '../support/waits.js';

/**
 * The real spire-agent v1.13.3 against tspire-server: a default agent.conf (join token, unix
 * workload attestor, nothing deprecated or experimental), so the agent syncs with
 * SyncAuthorizedEntries, serves its Workload API, follows a forced rotation of the X.509 authority,
 * and syncs an entry set larger than one page (the revision-paged path).
 */
const spireAgent = pinnedTool('spire-agent');
if (spireAgent.missing) console.warn(spireAgent.missing);
const spireServer = pinnedTool('spire-server');
if (spireServer.missing) console.warn(spireServer.missing);
const openssl = await runCommand('openssl', ['version']);
if (openssl.code !== 0) console.warn('openssl is not installed; skipping the real spire-agent tests');
const disabled = !!spireAgent.missing || !!spireServer.missing || openssl.code !== 0;

const TD = 'example.org';
const NODE = `spiffe://${TD}/real-agent/node`;
const WORKLOAD = `spiffe://${TD}/real-agent/workload`;
const LATE_WORKLOAD = `spiffe://${TD}/real-agent/late-workload`;
/** More than SPIRE's page of 500, so the sync goes as revision pages and then the entries asked for. */
const FILLER_ENTRIES = 520;

/** The key id of the authority that signed a leaf, as authority IDs are written (lowercase hex SKI). */
function issuerKeyId(leaf: x509.X509Certificate): string | undefined {
  return leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase();
}

interface Fetched {
  dir: string;
  /** Leaf certificates of every SVID served, by SPIFFE ID. */
  leaves: Map<string, x509.X509Certificate>;
}

describe.skipIf(disabled)('real spire-agent against tspire-server', () => {
  const run = makeRunDir('sra-');
  let stack: IdentityStack;
  let agent: ManagedProcess | undefined;
  const agentSocket = join(run.dir, 'real-agent.sock');
  let fetches = 0;

  const agentCli = (args: string[]) => runCommand(spireAgent.path!, [...args, '-socketPath', agentSocket]);
  const serverCli = async (args: string[]) => ok(stack.serverCli(args));

  /** `spire-agent api fetch x509 -write`, once it serves every SPIFFE ID in `ids`. */
  async function fetchX509(ids: string[], what: string, accept = (_: Fetched) => true): Promise<Fetched> {
    return waitFor(
      what,
      async () => {
        const dir = join(run.dir, `fetch-${++fetches}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        const result = await agentCli(['api', 'fetch', 'x509', '-write', dir]);
        if (result.code !== 0) throw new Error(result.stderr || result.stdout);
        const leaves = new Map<string, x509.X509Certificate>();
        for (let i = 0; ; i++) {
          let pem: string;
          try {
            pem = readFileSync(join(dir, `svid.${i}.pem`), 'utf8');
          } catch {
            break;
          }
          const leaf = new x509.X509Certificate(pem);
          const uri = leaf
            .getExtension(x509.SubjectAlternativeNameExtension)
            ?.names.items.find((n) => n.type === 'url')?.value;
          if (uri) leaves.set(uri, leaf);
        }
        const fetched = { dir, leaves };
        if (!ids.every((id) => leaves.has(id))) throw new Error(`served: ${[...leaves.keys()].join(', ')}`);
        return accept(fetched) ? fetched : undefined;
      },
      60_000,
      500,
    );
  }

  async function opensslVerify(dir: string, index: number, caFile = join(dir, `bundle.${index}.pem`)) {
    const svid = join(dir, `svid.${index}.pem`);
    return runCommand('openssl', ['verify', '-CAfile', caFile, '-untrusted', svid, svid]);
  }

  beforeAll(async () => {
    stack = await IdentityStack.create({ runDir: run.dir, x509SvidTtl: '1h', caTtl: '24h' });
    await stack.startServer();
    await stack.writeBootstrapBundle();
    const uid = String(process.getuid!());
    await serverCli([
      'entry',
      'create',
      '-parentID',
      NODE,
      '-spiffeID',
      WORKLOAD,
      '-selector',
      `unix:uid:${uid}`,
    ]);
    const token = await stack.generateToken(NODE);
    // SPIRE's own conf/agent/agent.conf, with this run's paths and port: only the options it sets.
    const config = join(run.dir, 'real-agent.conf');
    writeFileSync(
      config,
      `agent {
  data_dir = "${join(run.dir, 'real-agent-data')}"
  log_level = "DEBUG"
  server_address = "127.0.0.1"
  server_port = "${stack.serverPort}"
  socket_path = "${agentSocket}"
  trust_bundle_path = "${stack.bundlePath}"
  trust_domain = "${TD}"
}

plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      directory = "${join(run.dir, 'real-agent-data')}"
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`,
    );
    agent = startProcess(run.dir, 'spire-agent', spireAgent.path!, [
      'run',
      '-config',
      config,
      '-joinToken',
      token,
    ]);
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await stack?.stop();
    run.remove();
  });

  it('attests, syncs through SyncAuthorizedEntries and serves an SVID that openssl verify accepts', async () => {
    const fetched = await fetchX509([WORKLOAD], 'the real agent to serve the workload SVID');
    const verify = await opensslVerify(fetched.dir, 0);
    expect(verify.code, verify.stderr + agent!.log()).toBe(0);
    expect(verify.stdout).toContain(': OK');
    const log = agent!.log();
    expect(log).not.toMatch(/Unimplemented/i);
    expect(log).toContain('Starting Workload and SDS APIs');
    const served = await stack.admin().listAgents();
    expect(served.map((a) => `spiffe://${a.id!.trustDomain}${a.id!.path}`)).toContain(
      `spiffe://${TD}/spire/agent/join_token/${/join_token\/([0-9a-f-]+)/.exec(log)?.[1]}`,
    );
  });

  it('follows a forced rotation: after prepare, activate and taint it serves an SVID of the new authority', async () => {
    const before = await fetchX509([WORKLOAD], 'the SVID before the rotation');
    const prepared = await serverCli(['localauthority', 'x509', 'prepare']);
    const newId = /Authority ID:\s+(\S+)/.exec(prepared)?.[1];
    expect(newId, prepared).toBeDefined();
    await serverCli(['localauthority', 'x509', 'activate', '-authorityID', newId!]);
    const shown = await serverCli(['localauthority', 'x509', 'show']);
    const oldId = /Old X\.509 authority:\s+Authority ID:\s+(\S+)/.exec(shown)?.[1];
    expect(oldId, shown).toBeDefined();
    await serverCli(['localauthority', 'x509', 'taint', '-authorityID', oldId!]);

    expect(issuerKeyId(before.leaves.get(WORKLOAD)!)).toBe(oldId!.toLowerCase());
    const after = await fetchX509(
      [WORKLOAD],
      'an SVID signed by the new authority',
      (f) => issuerKeyId(f.leaves.get(WORKLOAD)!) === newId!.toLowerCase(),
    );
    expect(after.leaves.get(WORKLOAD)!.serialNumber).not.toBe(before.leaves.get(WORKLOAD)!.serialNumber);
    const verify = await opensslVerify(after.dir, 0);
    expect(verify.code, verify.stderr).toBe(0);
  }, 90_000);

  it('syncs an entry set larger than one page, and a new entry within it reaches the workload', async () => {
    // Entries for a uid no workload has: the agent must still sync them, as revisions first.
    const filler: Entry[] = Array.from({ length: FILLER_ENTRIES }, (_, i) => ({
      parentId: { trustDomain: TD, path: '/real-agent/node' },
      spiffeId: { trustDomain: TD, path: `/real-agent/filler/${i}` },
      selectors: [{ type: 'unix', value: 'uid:64999' }],
    }));
    await stack.admin().session(async (api) => {
      const client = api.entry();
      for (let i = 0; i < filler.length; i += 250) {
        const answer = await unary<BatchCreateEntryResponse__Output>((done) =>
          client.BatchCreateEntry({ entries: filler.slice(i, i + 250) }, done),
        );
        expect(answer.results.every((r) => r.status?.code === 0)).toBe(true);
      }
    });
    const uid = String(process.getuid!());
    await serverCli([
      'entry',
      'create',
      '-parentID',
      NODE,
      '-spiffeID',
      LATE_WORKLOAD,
      '-selector',
      `unix:uid:${uid}`,
    ]);
    const fetched = await fetchX509(
      [WORKLOAD, LATE_WORKLOAD],
      'the entry created after the filler to be served',
    );
    expect(fetched.leaves.size).toBe(2);
    expect(agent!.isRunning()).toBe(true);
    expect(agent!.log()).not.toMatch(/unexpected entr|Failed to fetch authorized entries/);
  }, 180_000);

  it('sees an entry updated among them by its new revision and re-issues its SVID with the change', async () => {
    const shown = await serverCli(['entry', 'show', '-spiffeID', LATE_WORKLOAD]);
    const entryId = /Entry ID\s+: (\S+)/.exec(shown)?.[1];
    expect(entryId, shown).toBeDefined();
    const uid = String(process.getuid!());
    // The real CLI's entry update (BatchUpdateEntry) on tspire-server's admin socket.
    const updated = await runCommand(spireServer.path!, [
      'entry',
      'update',
      '-entryID',
      entryId!,
      '-parentID',
      NODE,
      '-spiffeID',
      LATE_WORKLOAD,
      '-selector',
      `unix:uid:${uid}`,
      '-dns',
      'late.example.org',
      '-socketPath',
      stack.serverSocket,
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toContain('Revision         : 1');
    const fetched = await fetchX509(
      [WORKLOAD, LATE_WORKLOAD],
      'the SVID to carry the DNS name of the update',
      (f) =>
        f.leaves
          .get(LATE_WORKLOAD)!
          .getExtension(x509.SubjectAlternativeNameExtension)!
          .names.items.some((n) => n.type === 'dns' && n.value === 'late.example.org'),
    );
    const index = [...fetched.leaves.keys()].indexOf(LATE_WORKLOAD);
    const verify = await opensslVerify(fetched.dir, index);
    expect(verify.code, verify.stderr).toBe(0);
  }, 90_000);
});
