import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { IdentityStack } from '../deployment/stack/identity-stack.js';
import { packageRoot } from '../deployment/host/package-root.js';
import { processSelectors } from '../deployment/workload-identity.js';
import { WorkloadClient, workloadMetadata } from '../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../identity-core/proto/gen/X509SVIDResponse.js';
import type { JWTSVIDResponse__Output } from '../identity-core/proto/gen/JWTSVIDResponse.js';
import type { ValidateJWTSVIDResponse__Output } from '../identity-core/proto/gen/ValidateJWTSVIDResponse.js';

/**
 * The local identity demo: one server and one agent on the embedded datastore, a registration entry
 * for this user, and this process acting as the workload over the SPIFFE Workload API.
 */
const step = (text: string) => process.stdout.write(`\n▸ ${text}\n`);
const detail = (text: string) => process.stdout.write(`  ${text}\n`);

function firstX509Svid(socket: string, timeoutMs: number): Promise<X509SVIDResponse__Output> {
  const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = client.FetchX509SVID({}, workloadMetadata(), {
      deadline: new Date(Date.now() + timeoutMs),
    });
    stream.once('data', (response: X509SVIDResponse__Output) => {
      resolve(response);
      stream.cancel();
      client.close();
    });
    stream.once('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) reject(error);
      client.close();
    });
  });
}

function unaryCall<T>(
  socket: string,
  invoke: (
    client: InstanceType<typeof WorkloadClient>,
    done: (e: grpc.ServiceError | null, r?: T) => void,
  ) => void,
): Promise<T> {
  const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise<T>((resolve, reject) =>
    invoke(client, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response as T);
    }),
  );
}

async function main(): Promise<number> {
  const runDir = join(packageRoot(), '.run', `demo-${Date.now().toString(36)}`);
  mkdirSync(runDir, { recursive: true });
  const stack = await IdentityStack.create({ runDir, x509SvidTtl: '60s', syncInterval: '1s' });
  try {
    step(`Starting tspire-server (trust domain ${stack.trustDomain}, embedded datastore) in ${runDir}`);
    await stack.startServer();
    detail(`server API on 127.0.0.1:${stack.serverPort}, admin socket ${stack.serverSocket}`);

    step('Generating a join token and registering a workload entry for this user');
    const nodeId = `spiffe://${stack.trustDomain}/demo/node`;
    const workloadId = `spiffe://${stack.trustDomain}/demo/workload`;
    const token = await stack.generateToken(nodeId);
    detail(`join token ${token} → ${nodeId}`);
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      nodeId,
      '-spiffeID',
      workloadId,
      // This process is the workload: it is selected by its own uid.
      ...processSelectors().flatMap((selector) => ['-selector', selector]),
    ]);
    if (created.code !== 0) throw new Error(`entry create failed: ${created.stderr}`);
    detail(created.stdout.trim().split('\n').join('\n  '));

    step('Starting tspire-agent with the join token');
    await stack.startAgent(token);
    detail(`Workload API on ${stack.agentSocket}`);

    step('Fetching an X509-SVID over the Workload API');
    const x509 = await firstX509Svid(stack.agentSocket, 30_000);
    const svid = x509.svids[0]!;
    const leaf = new X509Certificate(svid.x509Svid);
    detail(`SPIFFE ID  ${svid.spiffeId}`);
    detail(`serial     ${leaf.serialNumber}`);
    detail(`valid      ${leaf.validFrom} → ${leaf.validTo} (TTL 60 s + 10 s backdating)`);
    detail(`issuer     ${leaf.issuer.replace(/\n/g, ', ')}`);
    const roots = svid.bundle.length;
    detail(
      `bundle     ${roots} bytes of X.509 authorities; chain verifies: ${leaf.checkIssued(new X509Certificate(svid.bundle))}`,
    );

    step('Fetching a JWT-SVID for audience "demo" and validating it through the agent');
    const jwt = await unaryCall<JWTSVIDResponse__Output>(stack.agentSocket, (c, done) =>
      c.FetchJWTSVID({ audience: ['demo'] }, workloadMetadata(), done),
    );
    const token0 = jwt.svids[0]!.svid;
    detail(`token      ${token0.slice(0, 48)}…`);
    const validated = await unaryCall<ValidateJWTSVIDResponse__Output>(stack.agentSocket, (c, done) =>
      c.ValidateJWTSVID({ audience: 'demo', svid: token0 }, workloadMetadata(), done),
    );
    detail(`valid for  ${validated.spiffeId}`);

    step('Done: the workload holds an X509-SVID and a JWT-SVID. Logs are in the run directory.');
    return 0;
  } catch (error) {
    process.stderr.write(`\ndemo failed: ${(error as Error).message}\n`);
    for (const p of [stack.server, stack.agent])
      if (p)
        process.stderr.write(
          `\n--- ${p.name} log (last lines) ---\n${p.log().split('\n').slice(-20).join('\n')}\n`,
        );
    return 1;
  } finally {
    await stack.stop();
  }
}

process.exitCode = await main();
