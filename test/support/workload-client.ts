import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as grpc from '@grpc/grpc-js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';

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

export async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
