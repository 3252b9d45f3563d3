import * as grpc from '@grpc/grpc-js';
import type { AttestAgentResponse__Output } from '../proto/gen/spire/api/server/agent/v1/AttestAgentResponse.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { deadline, type ServerConnection } from '../transport/server-connection.js';
import { newKeyAndCsr } from './workload-key.js';

export interface Attested {
  spiffeId: string;
  certificateChain: Buffer[];
  privateKeyPkcs8: Buffer;
}

/** join_token node attestation: one AttestAgent exchange that trades the token and a CSR for the agent SVID. */
export async function attestWithJoinToken(
  connection: ServerConnection,
  roots: Buffer[],
  token: string,
): Promise<Attested> {
  const { privateKeyPkcs8, csr } = await newKeyAndCsr();
  const client = connection.clients(roots, undefined).agent;
  const response = await new Promise<AttestAgentResponse__Output>((resolve, reject) => {
    const stream = client.AttestAgent(deadline(30_000));
    let result: AttestAgentResponse__Output | undefined;
    stream.on('data', (message: AttestAgentResponse__Output) => {
      result = message;
    });
    stream.on('error', (error: grpc.ServiceError) => reject(error));
    stream.on('end', () =>
      result ? resolve(result) : reject(new Error('server closed the attestation stream without a result')),
    );
    stream.write({ params: { data: { type: 'join_token', payload: Buffer.from(token) }, params: { csr } } });
    stream.end();
  });
  const svid = response.result?.svid;
  if (!svid || svid.certChain.length === 0 || !svid.id) throw new Error('attestation returned no agent SVID');
  return {
    spiffeId: SpiffeId.fromParts(svid.id.trustDomain, svid.id.path).toString(),
    certificateChain: svid.certChain.map((c) => Buffer.from(c)),
    privateKeyPkcs8,
  };
}
