import * as grpc from '@grpc/grpc-js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import { splitDerCertificates } from '../../identity-core/spiffe/pem.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../identity-core/spiffe/x509-svid.js';

export interface FetchedSvid {
  spiffeId: string;
  /** Leaf first. */
  chain: Buffer[];
  bundle: Buffer[];
}

const FETCH_TIMEOUT_MS = 5000;

/**
 * A client of its own, never sharing a connection with another client of this process: the agent
 * attests a caller by the ids it had when it connected, and a workload fetcher changes its group id
 * between fetches.
 */
const newClient = (socket: string) =>
  new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });

/** One FetchX509SVID answer from an agent: every SVID it serves this process, or [] when it serves none. */
export function fetchX509Svids(socket: string): Promise<FetchedSvid[]> {
  const client = newClient(socket);
  return new Promise<FetchedSvid[]>((resolve) => {
    const stream = client.FetchX509SVID({}, workloadMetadata(), {
      deadline: new Date(Date.now() + FETCH_TIMEOUT_MS),
    });
    stream.once('data', (response: X509SVIDResponse__Output) => {
      stream.cancel();
      resolve(
        response.svids.map((s) => ({
          spiffeId: s.spiffeId,
          chain: splitDerCertificates(Buffer.from(s.x509Svid)),
          bundle: splitDerCertificates(Buffer.from(s.bundle)),
        })),
      );
    });
    stream.once('error', () => resolve([]));
  }).finally(() => client.close());
}

/** One JWT-SVID for `spiffeId` with one audience, as a workload asks its agent for it. */
export function fetchJwtSvid(
  socket: string,
  spiffeId: string,
  audience: string,
  timeoutMs = FETCH_TIMEOUT_MS,
): Promise<string> {
  const client = newClient(socket);
  return new Promise<string>((resolve, reject) => {
    client.FetchJWTSVID(
      { audience: [audience], spiffeId },
      workloadMetadata(),
      { deadline: new Date(Date.now() + timeoutMs) },
      (error, response) => {
        const token = response?.svids.find((s) => s.spiffeId === spiffeId)?.svid;
        if (error) reject(new Error(error.details || error.message));
        else if (!token) reject(new Error(`the agent returned no JWT-SVID for ${spiffeId}`));
        else resolve(token);
      },
    );
  }).finally(() => client.close());
}

/** Authority ids of the roots in the SVID's own bundle that its chain verifies against. */
export function verifyingRoots(svid: { chain: Buffer[]; bundle: Buffer[] }): string[] {
  return svid.bundle
    .filter((root) => {
      try {
        verifyX509Svid(svid.chain, [root]);
        return true;
      } catch {
        return false;
      }
    })
    .map((root) => x509AuthorityId(root));
}
