import { readFileSync } from 'node:fs';
import { attestWithJoinToken } from '../identity-core/agent/node-attestation.js';
import { ServerConnection, call } from '../identity-core/transport/server-connection.js';
import { agentIdentityFrom, identityPem } from '../identity-core/agent/synchronizer.js';
import { newKeyAndCsr } from '../identity-core/agent/workload-key.js';
import { AdminApi } from '../identity-core/client/admin-api.js';
import { unary } from '../identity-core/client/grpc-call.js';
import type { BatchCreateEntryResponse__Output } from '../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { BatchNewX509SVIDResponse__Output } from '../identity-core/proto/gen/spire/api/server/svid/v1/BatchNewX509SVIDResponse.js';
import { parsePemCertificates } from '../identity-core/spiffe/pem.js';
import { IdentityStack } from '../deployment/stack/identity-stack.js';
import type { ImplementationName } from '../deployment/implementation/implementation.js';
import { benchDatabase, benchRunDir } from './bench-environment.js';

/**
 * X509-SVIDs per second through BatchNewX509SVID over mTLS: AGENTS simulated agents in this process,
 * each attested with its own join token and holding ENTRIES entries, call the server concurrently in
 * batches of BATCH CSRs against one server of `implementation` on PostgreSQL (the same entries, key
 * type and load for either).
 */
const AGENTS = Number(process.env.AGENTS ?? 20);
const ENTRIES = Number(process.env.ENTRIES ?? 25);
const BATCH = Number(process.env.BATCH ?? 25);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

export interface IssueRate {
  svids_per_s: number;
  issued: number;
  failed: number;
  agents: number;
  entries_per_agent: number;
  batch: number;
  seconds: number;
  datastore: string;
}

export async function measureIssueRate(
  implementation: ImplementationName,
  rateLimits?: { attestation: boolean; signing: boolean },
): Promise<IssueRate> {
  const run = benchRunDir(implementation === 'spire' ? 'sdbis-' : 'sdbi-');
  const database = await benchDatabase('sd_bench_issue');
  const stack = await IdentityStack.create({
    runDir: run.dir,
    implementation,
    database: database.choice,
    logLevel: 'WARN',
    ...(rateLimits ? { rateLimits } : {}),
  });
  try {
    await stack.startServer();
    await stack.writeBootstrapBundle();
    const roots = parsePemCertificates(readFileSync(stack.bundlePath));
    const admin = new AdminApi(stack.serverSocket);
    const agents = [];
    for (let a = 0; a < AGENTS; a++) {
      const node = `/bench/node-${a}`;
      const token = await stack.generateToken(`spiffe://example.org${node}`);
      const entries = Array.from({ length: ENTRIES }, (_, e) => ({
        spiffeId: { trustDomain: 'example.org', path: `/bench/agent-${a}/workload-${e}` },
        parentId: { trustDomain: 'example.org', path: node },
        selectors: [{ type: 'unix', value: `uid:${10_000 + e}` }],
      }));
      const created = await unary<BatchCreateEntryResponse__Output>((done) =>
        admin.entry().BatchCreateEntry({ entries }, done),
      );
      const connection = new ServerConnection(`127.0.0.1:${stack.serverPort}`, 'example.org');
      const attested = await attestWithJoinToken(connection, roots, token);
      const clients = connection.clients(
        roots,
        identityPem(
          agentIdentityFrom(attested.spiffeId, attested.certificateChain, attested.privateKeyPkcs8),
        ),
      );
      agents.push({ connection, clients, entryIds: created.results.map((r) => r.entry!.id) });
    }
    admin.close();
    // The server's entry cache picks up new entries on its own schedule (5 s): wait for it before measuring.
    await new Promise((r) => setTimeout(r, 6000));
    const csrs = await Promise.all(Array.from({ length: 200 }, () => newKeyAndCsr().then((k) => k.csr)));

    let issued = 0;
    let failed = 0;
    const end = Date.now() + SECONDS * 1000;
    const started = performance.now();
    await Promise.all(
      agents.map(async (agent, a) => {
        let round = 0;
        while (Date.now() < end) {
          const params = Array.from({ length: BATCH }, (_, i) => ({
            entryId: agent.entryIds[(round * BATCH + i) % agent.entryIds.length]!,
            csr: csrs[(a * 7 + round * BATCH + i) % csrs.length]!,
          }));
          const response = await call<BatchNewX509SVIDResponse__Output>((o, done) =>
            agent.clients.svid.BatchNewX509SVID({ params }, o, done),
          );
          for (const result of response.results)
            if (result.status?.code === 0) issued++;
            else failed++;
          round++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    for (const agent of agents) agent.connection.close();
    return {
      svids_per_s: Math.round(issued / elapsed),
      issued,
      failed,
      agents: AGENTS,
      entries_per_agent: ENTRIES,
      batch: BATCH,
      seconds: Number(elapsed.toFixed(2)),
      datastore: database.choice.type,
    };
  } finally {
    await stack.stop();
    await database.drop();
    run.remove();
  }
}
