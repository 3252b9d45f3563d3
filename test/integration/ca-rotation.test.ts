import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { AdminApi } from '../../identity-core/client/admin-api.js';
import { unary } from '../../identity-core/client/grpc-call.js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';
import type { GetX509AuthorityStateResponse__Output } from '../../identity-core/proto/gen/spire/api/server/localauthority/v1/GetX509AuthorityStateResponse.js';
import { parsePemCertificates, splitDerCertificates } from '../../identity-core/spiffe/pem.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../identity-core/spiffe/x509-svid.js';
import { makeRunDir } from '../support/run-dir.js';
import { waitFor, waitUntil } from '../support/waits.js';

/** What the workload sees: the latest SVID chain and bundle on its FetchX509SVID stream. */
function watchWorkload(socket: string) {
  const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
  const state: { leaf?: Buffer; authorityKeyId?: string; bundle: Buffer[]; updates: number } = {
    bundle: [],
    updates: 0,
  };
  const stream = client.FetchX509SVID({}, workloadMetadata());
  stream.on('data', (response: X509SVIDResponse__Output) => {
    const svid = response.svids[0]!;
    const leaf = new x509.X509Certificate(svid.x509Svid);
    state.leaf = Buffer.from(leaf.rawData);
    state.authorityKeyId = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase();
    state.bundle = splitDerCertificates(svid.bundle);
    state.updates++;
  });
  stream.on('error', () => undefined);
  return { state, close: () => (stream.cancel(), client.close()) };
}

async function startStack(dir: string, options: Partial<Parameters<typeof IdentityStack.create>[0]>) {
  const stack = await IdentityStack.create({ runDir: dir, syncInterval: '1s', ...options });
  await stack.startServer();
  const token = await stack.generateToken('spiffe://example.org/rotation/node');
  const created = await stack.serverCli([
    'entry',
    'create',
    '-parentID',
    'spiffe://example.org/rotation/node',
    '-spiffeID',
    'spiffe://example.org/rotation/workload',
    '-selector',
    `unix:uid:${process.getuid!()}`,
  ]);
  expect(created.code, created.stderr).toBe(0);
  await stack.startAgent(token);
  return stack;
}

const x509State = (admin: AdminApi) =>
  unary<GetX509AuthorityStateResponse__Output>((done) =>
    admin.localAuthority().GetX509AuthorityState({}, done),
  );

describe('forced X.509 rotation through the localauthority CLI', () => {
  const run = makeRunDir('sdfr-');
  let stack: IdentityStack;
  let admin: AdminApi;
  let watch: ReturnType<typeof watchWorkload>;
  let ports: {
    serverMetricsPort: number;
    serverHealthPort: number;
    agentMetricsPort: number;
    agentHealthPort: number;
  };

  beforeAll(async () => {
    ports = {
      serverMetricsPort: await freePort(),
      serverHealthPort: await freePort(),
      agentMetricsPort: await freePort(),
      agentHealthPort: await freePort(),
    };
    stack = await startStack(run.dir, { x509SvidTtl: '10m', telemetry: ports });
    admin = new AdminApi(stack.serverSocket);
    watch = watchWorkload(stack.agentSocket);
    await waitUntil('a first SVID', () => watch.state.updates > 0, 30_000);
  });
  afterAll(async () => {
    watch?.close();
    admin?.close();
    await stack?.stop();
    run.remove();
  });

  it('prepares, activates, taints and revokes, and the workload follows each step', async () => {
    const original = (await x509State(admin)).active!.authorityId;
    expect(watch.state.authorityKeyId).toBe(original);

    const prepared = await stack.serverCli(['localauthority', 'x509', 'prepare']);
    expect(prepared.code, prepared.stderr).toBe(0);
    const next = /Authority ID: (\S+)/.exec(prepared.stdout)![1]!;
    expect(next).not.toBe(original);
    const bundle = parsePemCertificates((await stack.serverCli(['bundle', 'show', '-format', 'pem'])).stdout);
    expect(bundle.map(x509AuthorityId).sort()).toEqual([original, next].sort());
    await waitUntil(
      'the workload bundle to hold both authorities',
      () => watch.state.bundle.length === 2,
      15_000,
    );

    // A taint before activation is refused: only an OLD authority can be tainted.
    const early = await stack.serverCli(['localauthority', 'x509', 'taint', '-authorityID', next]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/only Old local authorities can be tainted/);

    expect((await stack.serverCli(['localauthority', 'x509', 'activate', '-authorityID', next])).code).toBe(
      0,
    );
    expect((await x509State(admin)).old?.authorityId).toBe(original);

    const tainted = await stack.serverCli(['localauthority', 'x509', 'taint', '-authorityID', original]);
    expect(tainted.code, tainted.stderr).toBe(0);
    await waitUntil(
      'the workload SVID to come from the new authority',
      () => watch.state.authorityKeyId === next,
      20_000,
    );
    const newRoot = bundle.find((der) => x509AuthorityId(der) === next)!;
    const oldRoot = bundle.find((der) => x509AuthorityId(der) === original)!;
    expect(verifyX509Svid([watch.state.leaf!], [newRoot]).spiffeId.toString()).toBe(
      'spiffe://example.org/rotation/workload',
    );
    expect(() => verifyX509Svid([watch.state.leaf!], [oldRoot])).toThrow(/unknown authority/);

    const revoked = await stack.serverCli(['localauthority', 'x509', 'revoke', '-authorityID', original]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(
      parsePemCertificates((await stack.serverCli(['bundle', 'show', '-format', 'pem'])).stdout).map(
        x509AuthorityId,
      ),
    ).toEqual([next]);
    await waitUntil(
      'the workload bundle to hold one authority',
      () => watch.state.bundle.length === 1,
      15_000,
    );
    expect(x509AuthorityId(watch.state.bundle[0]!)).toBe(next);
  });

  it('exposes SPIRE-named metrics and health on both processes', async () => {
    const get = async (port: number, path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    const server = await get(ports.serverMetricsPort, '/metrics');
    expect(server.status).toBe(200);
    expect(server.body).toMatch(/^spire_server_ca_manager_x509_ca_prepare 1$/m);
    expect(server.body).toMatch(/^spire_server_ca_manager_x509_ca_activate 1$/m);
    expect(server.body).toMatch(
      /spire_server_rpc_calls_total\{service="svid.v1.SVID",method="BatchNewX509SVID",status="OK"\} [1-9]/,
    );
    const agent = await get(ports.agentMetricsPort, '/metrics');
    expect(agent.body).toMatch(/^spire_agent_cache_manager_tainted_x509_svids_workload [1-9]/m);
    expect(agent.body).toMatch(/spire_agent_manager_sync_fetch_entries_updates\{result="ok"\} [1-9]/);
    expect((await get(ports.serverHealthPort, '/ready')).status).toBe(200);
    expect((await get(ports.serverHealthPort, '/live')).status).toBe(200);
    const ready = await get(ports.agentHealthPort, '/ready');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, consecutive_sync_failures: 0 });
  });
});

describe('automatic X.509 rotation at SPIRE thresholds', () => {
  const run = makeRunDir('sdar-');
  let stack: IdentityStack;
  let admin: AdminApi;

  beforeAll(async () => {
    // CA lifetime 40 s, counted as SPIRE counts it from when the CA was made (its NotBefore is backdated
    // 10 s more): prepare after half of it, activate with a sixth left.
    stack = await startStack(run.dir, { caTtl: '40s', x509SvidTtl: '6s', caRotationCheckInterval: '1s' });
    admin = new AdminApi(stack.serverSocket);
  });
  afterAll(async () => {
    admin?.close();
    await stack?.stop();
    run.remove();
  });

  it('prepares at half the CA lifetime and activates at one sixth remaining', async () => {
    const lifetime = 40;
    const first = (await x509State(admin)).active!;
    // Polled every 250 ms: the moments measured below are the polls that first saw the change.
    await waitFor(
      'an authority to be prepared',
      async () => {
        const now = await x509State(admin);
        return now.prepared ? now : undefined;
      },
      60_000,
      250,
    );
    const preparedAt = Date.now() / 1000;
    // Less than half the lifetime remained, allowing the 1 s check interval and 1 s certificate precision.
    expect(first.expiresAt - preparedAt).toBeLessThanOrEqual(lifetime / 2 + 0.5);
    expect(first.expiresAt - preparedAt).toBeGreaterThan(lifetime / 2 - 2.5);
    const state = await waitFor(
      'the prepared authority to be activated',
      async () => {
        const now = await x509State(admin);
        return now.active?.authorityId !== first.authorityId ? now : undefined;
      },
      60_000,
      250,
    );
    const activatedAt = Date.now() / 1000;
    expect(state.active?.authorityId).not.toBe(first.authorityId);
    expect(state.old?.authorityId).toBe(first.authorityId);
    expect(first.expiresAt - activatedAt).toBeLessThanOrEqual(lifetime / 6 + 0.5);
    expect(first.expiresAt - activatedAt).toBeGreaterThan(lifetime / 6 - 2.5);
  });
});
