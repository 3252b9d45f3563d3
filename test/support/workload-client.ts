import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as grpc from '@grpc/grpc-js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';
import { splitDerCertificates } from '../../identity-core/spiffe/pem.js';

export interface ReceivedSvid {
  spiffeId: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  receivedAt: number;
  /** Lowercase hex key id of the authority that signed it. */
  authorityKeyId: string;
}

export function workloadClient(socketPath: string) {
  return new WorkloadClient(`unix://${socketPath}`, grpc.credentials.createInsecure());
}

/** Holds a FetchX509SVID stream open and records every SVID it delivers, as a probe would. */
export function watchX509Svids(socketPath: string) {
  const client = workloadClient(socketPath);
  const received: ReceivedSvid[] = [];
  const errors: grpc.ServiceError[] = [];
  const stream = client.FetchX509SVID({}, workloadMetadata());
  stream.on('data', (response: X509SVIDResponse__Output) => {
    const svid = response.svids[0];
    if (!svid) return;
    // x509_svid is the DER chain concatenated; the leaf comes first.
    const leaf = new X509Certificate(svid.x509Svid);
    received.push({
      spiffeId: svid.spiffeId,
      serial: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom).getTime(),
      notAfter: new Date(leaf.validTo).getTime(),
      receivedAt: Date.now(),
      authorityKeyId:
        new x509.X509Certificate(leaf.raw)
          .getExtension(x509.AuthorityKeyIdentifierExtension)
          ?.keyId?.toLowerCase() ?? '',
    });
  });
  stream.on('error', (error: grpc.ServiceError) => {
    if (error.code !== grpc.status.CANCELLED) errors.push(error);
  });
  return {
    received,
    errors,
    close() {
      stream.cancel();
      client.close();
    },
  };
}

/**
 * A watch that has received its first SVID. Until the agent has synced the workload's entry, the
 * Workload API answers PermissionDenied and ends the stream, as SPIRE does, so this opens it again.
 */
export async function watchOnceServed(
  socketPath: string,
  timeoutMs: number,
): Promise<ReturnType<typeof watchX509Svids>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const watch = watchX509Svids(socketPath);
    const attemptEnd = Date.now() + 2000;
    while (Date.now() < attemptEnd && watch.received.length === 0 && watch.errors.length === 0)
      await new Promise((r) => setTimeout(r, 100));
    if (watch.received.length > 0) return watch;
    watch.close();
    if (Date.now() > deadline)
      throw new Error(
        `no SVID served within ${timeoutMs} ms: ${watch.errors.map((e) => e.message).join('; ')}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface FetchedX509Svid {
  spiffeId: string;
  /** Leaf first. */
  chain: Buffer[];
  privateKeyPkcs8: Buffer;
  /** The trust domain's X.509 authorities as the Workload API serves them. */
  bundle: Buffer[];
}

/**
 * The SVID (and bundle) the Workload API serves this process now: one FetchX509SVID response, asked
 * again until the agent has an entry for us or the time is up.
 */
export async function fetchX509Svid(socketPath: string, timeoutMs = 30_000): Promise<FetchedX509Svid> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const client = workloadClient(socketPath);
    try {
      const response = await new Promise<X509SVIDResponse__Output>((resolve, reject) => {
        const stream = client.FetchX509SVID({}, workloadMetadata());
        stream.once('data', (r: X509SVIDResponse__Output) => {
          resolve(r);
          stream.cancel();
        });
        stream.once('error', reject);
      });
      const svid = response.svids[0];
      if (svid)
        return {
          spiffeId: svid.spiffeId,
          chain: splitDerCertificates(Buffer.from(svid.x509Svid)),
          privateKeyPkcs8: Buffer.from(svid.x509SvidKey),
          bundle: splitDerCertificates(Buffer.from(svid.bundle)),
        };
    } catch (error) {
      lastError = (error as Error).message;
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no X509-SVID from ${socketPath} within ${timeoutMs} ms: ${lastError}`);
}

export function fetchJwtSvid(socketPath: string, audience: string): Promise<string> {
  const client = workloadClient(socketPath);
  return new Promise<string>((resolve, reject) => {
    client.FetchJWTSVID({ audience: [audience] }, workloadMetadata(), (error, response) => {
      client.close();
      if (error || !response?.svids[0]) reject(error ?? new Error('no JWT-SVID returned'));
      else resolve(response.svids[0].svid);
    });
  });
}

/** ValidateJWTSVID on the given agent: the SPIFFE ID it vouches for, or the error it gives. */
export function validateJwtSvid(socketPath: string, token: string, audience: string): Promise<string> {
  const client = workloadClient(socketPath);
  return new Promise<string>((resolve, reject) => {
    client.ValidateJWTSVID({ svid: token, audience }, workloadMetadata(), (error, response) => {
      client.close();
      if (error || !response) reject(error ?? new Error('no answer'));
      else resolve(response.spiffeId);
    });
  });
}
