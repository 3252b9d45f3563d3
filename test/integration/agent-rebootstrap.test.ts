import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../identity-core/pki/x509pop.js';
import { parsePemCertificates } from '../../identity-core/spiffe/pem.js';
import { verifyX509Svid } from '../../identity-core/spiffe/x509-svid.js';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { waitFor, waitUntil } from '../support/waits.js';
import { fetchX509Svid } from '../support/workload-client.js';

/**
 * Issue 15, Done-means 4 (second half): an x509pop agent cut off by a server root it never saw
 * (the server's datastore and keys wiped, so it mints a new root) comes back with
 * `rebootstrap_mode = "auto"`: after `rebootstrap_delay` it exits for rebootstrapping, is restarted
 * (the stack supervises its agents as systemd would), bootstraps from the trust bundle the operator
 * published, attests again with the same certificate, and its workload gets an SVID of the new root.
 * With `never` the same agent stays cut off however often it is restarted. And an x509pop agent the
 * server forgot (evicted) attests again as itself while it runs.
 */
const WORKLOAD_ID = 'spiffe://example.org/rebootstrap/workload';
const DELAY_MS = 2000;

interface LogLine {
  time: number;
  msg: string;
  [key: string]: unknown;
}

function logLines(log: string): LogLine[] {
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

async function spinUp(mode: 'auto' | 'never', dir: string, database: TestDatabase) {
  const stack = await IdentityStack.create({
    runDir: dir,
    database: { type: 'postgres', connectionString: database.connectionString },
    syncInterval: '1s',
    nodeAttestor: 'x509pop',
    restartAgentsOnExit: true,
    agentKnobs: { rebootstrapMode: mode, rebootstrapDelay: `${DELAY_MS / 1000}s` },
  });
  await stack.startServer();
  const nodeCert = parsePemCertificates(readFileSync(join(dir, 'agent-x509pop.pem')))[0]!;
  const agentId = `spiffe://example.org/spire/agent/x509pop/${fingerprint(nodeCert)}`;
  const register = () =>
    stack.admin().ensureEntry({
      parentId: agentId,
      spiffeId: WORKLOAD_ID,
      selectors: [`unix:uid:${process.getuid!()}`],
    });
  await register();
  await stack.startAgent(undefined);
  const oldRoots = parsePemCertificates(await stack.admin().bundlePem());
  const first = await fetchX509Svid(stack.agentSocket);
  expect(first.spiffeId).toBe(WORKLOAD_ID);
  verifyX509Svid(first.chain, oldRoots);
  return { stack, agentId, register, oldRoots };
}

/** The server loses its datastore and keys and starts over with a root no agent has seen. */
async function replaceServerRoot(
  stack: IdentityStack,
  dir: string,
  database: TestDatabase,
): Promise<Buffer[]> {
  await stack.server!.stop();
  const client = new pg.Client({ connectionString: database.connectionString });
  await client.connect();
  try {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  } finally {
    await client.end();
  }
  rmSync(join(dir, 'server-data'), { recursive: true, force: true });
  await stack.startServer();
  return parsePemCertificates(await stack.admin().bundlePem());
}

const postgres = await postgresAvailable();
if (!postgres.ok) console.warn(postgres.reason);

describe.skipIf(!postgres.ok)('agent rebootstrap after an unseen server root (x509pop)', () => {
  let stack: IdentityStack | undefined;
  let run: ReturnType<typeof makeRunDir> | undefined;
  let database: TestDatabase | undefined;

  beforeEach(async () => {
    run = makeRunDir('sdrb-');
    database = await createTestDatabase('sd_rebootstrap');
  });

  afterEach(async () => {
    await stack?.stop();
    await database?.drop();
    run?.remove();
  });

  it('rebootstrap_mode "auto": rebootstraps after the delay and serves SVIDs of the new root', async () => {
    const up = await spinUp('auto', run!.dir, database!);
    stack = up.stack;
    const wipedAt = Date.now();
    const newRoots = await replaceServerRoot(up.stack, run!.dir, database!);
    expect(newRoots[0]!.equals(up.oldRoots[0]!)).toBe(false);
    // The operator publishes the new root where agents bootstrap from, and restores the registration.
    await up.stack.writeBootstrapBundle();
    await up.register();

    const svid = await waitFor(
      'an SVID of the new root from the workload API',
      async () => {
        const fetched = await fetchX509Svid(up.stack.agentSocket, 2000);
        verifyX509Svid(fetched.chain, newRoots);
        return fetched;
      },
      45_000,
      500,
    );
    expect(svid.spiffeId).toBe(WORKLOAD_ID);
    expect(() => verifyX509Svid(svid.chain, up.oldRoots)).toThrow(/unknown authority/);

    const lines = logLines(up.stack.agent!.log()).filter((l) => l.time >= wipedAt);
    const waiting = lines.find((l) => l.msg === 'Trust Bandle and Server dont agree.... Ignoring for now.');
    const leaving = lines.find((l) => l.msg === 'Trust Bandle and Server dont agree.... rebootstrapping');
    expect(waiting, 'the agent waits out the delay first').toBeDefined();
    expect(leaving, 'then leaves to rebootstrap').toBeDefined();
    expect(lines.some((l) => l.msg === 'shutting down for rebootstrapping')).toBe(true);
    // The delay counts from the first untrusted answer.
    expect(leaving!.time - waiting!.time).toBeGreaterThanOrEqual(DELAY_MS - 50);
    expect(up.stack.agentRestarts[0]).toBeGreaterThanOrEqual(1);
    const attested = lines.find((l) => l.msg === 'Node attestation was successful' && l.time > leaving!.time);
    expect(attested?.['spiffe_id']).toBe(up.agentId);
    expect(attested?.['reattestable']).toBe(true);
    const stored = await up.stack.implementation.storedAgentIdentity(up.stack.agentDataDir(0));
    expect(stored?.bundleRoots.some((root) => root.equals(newRoots[0]!))).toBe(true);
    verifyX509Svid(stored!.chain, newRoots);

    // x509pop is re-attestable: evicted, the running agent attests again as itself, without exiting.
    const restarts = up.stack.agentRestarts[0];
    const evictedAt = Date.now();
    const evicted = await up.stack.serverCli(['agent', 'evict', '-spiffeID', up.agentId]);
    expect(evicted.code, evicted.stderr).toBe(0);
    const reattested = await waitFor(
      'the evicted agent to re-attest',
      async () =>
        logLines(up.stack.agent!.log()).find(
          (l) => l.time >= evictedAt && l.msg === 'Successfully reattested node',
        ),
      30_000,
    );
    expect(reattested['spiffe_id']).toBe(up.agentId);
    expect(
      logLines(up.stack.agent!.log()).some(
        (l) => l.time >= evictedAt && l.msg === 'Agent needs to re-attest; will attempt to re-attest',
      ),
    ).toBe(true);
    const listed = await up.stack.serverCli(['agent', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    const block = listed.stdout.split('\n\n').find((b) => b.includes(`SPIFFE ID         : ${up.agentId}`));
    expect(block).toMatch(/Attestation type\s*: x509pop/);
    expect(block).toMatch(/Can re-attest\s*: true/);
    expect(up.stack.agentRestarts[0]).toBe(restarts);
  });

  it('rebootstrap_mode "never": stays cut off, restart after restart', async () => {
    const up = await spinUp('never', run!.dir, database!);
    stack = up.stack;
    const wipedAt = Date.now();
    await replaceServerRoot(up.stack, run!.dir, database!);
    await up.stack.writeBootstrapBundle();
    await up.register();

    const exits = () =>
      logLines(up.stack.agent!.log()).filter(
        (l) => l.time >= wipedAt && l.msg.startsWith('Synchronize failed, non-recoverable error'),
      );
    // Three restarts that each end the same way: the restarts are not what brings an agent back.
    await waitUntil('three non-recoverable exits', () => exits().length >= 3, 45_000);
    expect(up.stack.agentRestarts[0]).toBeGreaterThanOrEqual(2);
    const lines = logLines(up.stack.agent!.log()).filter((l) => l.time >= wipedAt);
    expect(lines.some((l) => l.msg.startsWith('Trust Bandle and Server dont agree'))).toBe(false);
    expect(lines.some((l) => l.msg === 'Node attestation was successful')).toBe(false);
    const stored = await up.stack.implementation.storedAgentIdentity(up.stack.agentDataDir(0));
    expect(stored?.bundleRoots.some((root) => root.equals(up.oldRoots[0]!))).toBe(true);
  });
});
