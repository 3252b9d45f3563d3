import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';

export interface ReceivedSvid {
  spiffeId: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  receivedAt: number;
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
