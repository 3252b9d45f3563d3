import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { AttestAgentResponse__Output } from '../proto/gen/spire/api/server/agent/v1/AttestAgentResponse.js';
import {
  calculateResponse,
  decodeChallenge,
  encodeAttestationData,
  encodeResponse,
  X509POP,
} from '../pki/x509pop.js';
import { parsePemCertificates } from '../spiffe/pem.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { deadline, type ServerConnection } from '../transport/server-connection.js';
import { newKeyAndCsr } from './workload-key.js';

export interface Attested {
  spiffeId: string;
  certificateChain: Buffer[];
  privateKeyPkcs8: Buffer;
  /** Whether the server lets this agent attest again (SPIRE's `reattestable`). */
  reattestable: boolean;
}

/**
 * The agent's half of a node attestor: the payload of the first message, and the answer to each
 * challenge the server sends (join_token gets none).
 */
export interface NodeAttestorClient {
  type: string;
  payload: Buffer;
  answer(challenge: Buffer): Buffer;
}

export function joinTokenAttestor(token: string): NodeAttestorClient {
  return {
    type: 'join_token',
    payload: Buffer.from(token),
    answer: () => {
      throw new Error('join_token attestation takes no challenge');
    },
  };
}

export interface X509PopFiles {
  privateKeyPath: string;
  certificatePath: string;
  intermediatesPath?: string;
}

/**
 * x509pop's agent side, as SPIRE's plugin: the certificate file (with any chain after the leaf) and
 * the key must match; the intermediates file, when given, is appended to the chain sent.
 */
export async function x509popAttestor(files: X509PopFiles): Promise<NodeAttestorClient> {
  let chain: Buffer[];
  let key: KeyObject;
  try {
    chain = parsePemCertificates(await readFile(files.certificatePath));
    if (chain.length === 0) throw new Error('failed to find any PEM data in certificate input');
    key = createPrivateKey(await readFile(files.privateKeyPath));
    const leafKey = new X509Certificate(chain[0]!).publicKey.export({ format: 'der', type: 'spki' });
    if (!createPublicKey(key).export({ format: 'der', type: 'spki' }).equals(leafKey))
      throw new Error('private key does not match public key');
  } catch (error) {
    throw new Error(`unable to load keypair: ${(error as Error).message}`, { cause: error });
  }
  if (files.intermediatesPath?.trim()) {
    try {
      chain.push(...parsePemCertificates(await readFile(files.intermediatesPath)));
    } catch (error) {
      throw new Error(`unable to load intermediate certificates: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return {
    type: X509POP,
    payload: encodeAttestationData(chain),
    answer: (challenge) => encodeResponse(calculateResponse(key, decodeChallenge(challenge))),
  };
}

/**
 * Node attestation over the AttestAgent stream: the attestor's payload and a CSR, then one answer per
 * challenge until the server returns the agent SVID.
 */
export async function attestNode(
  connection: ServerConnection,
  roots: Buffer[],
  attestor: NodeAttestorClient,
): Promise<Attested> {
  const { privateKeyPkcs8, csr } = await newKeyAndCsr();
  const client = connection.clients(roots, undefined).agent;
  const response = await new Promise<AttestAgentResponse__Output>((resolve, reject) => {
    const stream = client.AttestAgent(deadline(30_000));
    let result: AttestAgentResponse__Output | undefined;
    let halfClosed = false;
    const halfClose = () => {
      if (halfClosed) return;
      halfClosed = true;
      stream.end();
    };
    stream.on('data', (message: AttestAgentResponse__Output) => {
      if (message.step === 'challenge' && message.challenge) {
        try {
          stream.write({ challengeResponse: attestor.answer(message.challenge) });
        } catch (error) {
          stream.cancel();
          reject(new Error(`failed to calculate challenge response: ${(error as Error).message}`));
        }
        return;
      }
      result = message;
      halfClose();
    });
    stream.on('error', (error: grpc.ServiceError) => reject(error));
    stream.on('end', () =>
      result ? resolve(result) : reject(new Error('server closed the attestation stream without a result')),
    );
    stream.write({ params: { data: { type: attestor.type, payload: attestor.payload }, params: { csr } } });
    // join_token is one message each way; a challenge-response attestor keeps the stream open.
    if (attestor.type === 'join_token') halfClose();
  });
  const svid = response.result?.svid;
  if (!svid || svid.certChain.length === 0 || !svid.id) throw new Error('attestation returned no agent SVID');
  return {
    spiffeId: SpiffeId.fromParts(svid.id.trustDomain, svid.id.path).toString(),
    certificateChain: svid.certChain.map((c) => Buffer.from(c)),
    privateKeyPkcs8,
    reattestable: response.result?.reattestable ?? false,
  };
}

/** join_token attestation in one call (benchmarks and tests attest this way). */
export function attestWithJoinToken(
  connection: ServerConnection,
  roots: Buffer[],
  token: string,
): Promise<Attested> {
  return attestNode(connection, roots, joinTokenAttestor(token));
}
