import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { bundleService } from '../../identity-core/proto/services.js';
import { toPem } from '../../identity-core/spiffe/pem.js';
import { PersistentServerConnection } from '../../identity-core/transport/persistent-server-connection.js';
import { call, type ClientIdentity } from '../../identity-core/transport/server-connection.js';
import { waitFor, waitUntil } from '../support/waits.js';

/**
 * A downstream's connection to its upstream, as SPIRE's UpstreamAuthority plugin keeps it: it
 * reconnects on gRPC's backoff (1 s, then ×1.6 ±20 %), fails calls at once while it waits, and
 * so comes back at its next connection attempt after the upstream returns, not at the next call.
 * A relay in front of a real gRPC server plays the upstream: while "down" it drops every connection
 * (counting it), then it forwards them.
 */
const TD = 'example.org';

function svid(ca: { der: Buffer; privateKey: KeyObject }, spiffeId: string): ClientIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const minted = new X509SvidMinter(ca).mint({
    spiffeId,
    publicKeySpki: publicKey.export({ format: 'der', type: 'spki' }),
    ttlSeconds: 600,
  });
  return {
    certificateChain: [minted.der],
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

describe("a downstream's channel to its upstream through an outage", () => {
  const attempts: number[] = [];
  let up = false;
  let upstream: grpc.Server;
  let relay: Server;
  const relayed: Socket[] = [];
  let connection: PersistentServerConnection;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ca = {
      ...(await createSelfSignedCa({ trustDomain: TD, privateKey, ttlSeconds: 600 })),
      privateKey,
    };
    const server = svid(ca, `spiffe://${TD}/spire/server`);
    upstream = new grpc.Server();
    upstream.addService(bundleService, {
      GetBundle: (_call: unknown, done: grpc.sendUnaryData<{ trustDomain: string }>) =>
        done(null, { trustDomain: TD }),
    });
    const upstreamPort = await new Promise<number>((resolve, reject) =>
      upstream.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(
          Buffer.from(toPem(ca.der)),
          [
            {
              cert_chain: Buffer.from(server.certificateChain.map((c) => toPem(c)).join('')),
              private_key: Buffer.from(server.privateKeyPem),
            },
          ],
          false,
        ),
        (error, port) => (error ? reject(error) : resolve(port)),
      ),
    );
    relay = createServer((socket) => {
      attempts.push(Date.now());
      if (!up) return socket.destroy();
      const target = connect(upstreamPort, '127.0.0.1');
      relayed.push(socket, target);
      socket.pipe(target).pipe(socket);
      socket.on('error', () => target.destroy());
      target.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const { port } = relay.address() as { port: number };
    connection = new PersistentServerConnection(`127.0.0.1:${port}`, TD);
    connection.update([ca.der], svid(ca, `spiffe://${TD}/downstream`));
  });

  afterAll(async () => {
    connection?.close();
    for (const socket of relayed) socket.destroy();
    relay?.close();
    await new Promise<void>((resolve) => (upstream ? upstream.tryShutdown(() => resolve()) : resolve()));
  });

  const getBundle = async (): Promise<{ ok: boolean; ms: number; code?: number }> => {
    const started = Date.now();
    try {
      await call((o, done) => connection.clients().bundle.GetBundle({}, o, done), 5000);
      return { ok: true, ms: Date.now() - started };
    } catch (error) {
      return { ok: false, ms: Date.now() - started, code: (error as grpc.ServiceError).code };
    }
  };

  /**
   * The first delay is 1 s; each next one is the previous ×1.6, ±20 % (grpc-js carries the jitter
   * over), give or take a connection's few ms and the timers' slack.
   */
  const expectOnSchedule = (times: number[]) => {
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(950);
    expect(gaps[0]).toBeLessThanOrEqual(1300);
    for (let i = 1; i < gaps.length; i++) {
      expect(gaps[i]! / gaps[i - 1]!, `delay ${i}`).toBeGreaterThanOrEqual(1.6 * 0.8 - 0.1);
      expect(gaps[i]! / gaps[i - 1]!, `delay ${i}`).toBeLessThanOrEqual(1.6 * 1.2 + 0.1);
    }
  };

  it('reconnects on its own with a growing backoff, failing calls fast in between', async () => {
    // One call starts the connection; every later attempt is the connection's own.
    expect((await getBundle()).ok).toBe(false);
    await waitUntil('four connection attempts', () => attempts.length >= 4, 15_000);
    expectOnSchedule(attempts.slice(0, 4));

    // Between attempts a call fails at once, and makes no attempt of its own.
    const before = attempts.length;
    const failed = await getBundle();
    expect(failed).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(failed.ms).toBeLessThan(200);
    expect(attempts.length).toBe(before);
  });

  it('after the upstream is back, calls keep failing until the next backoff attempt connects', async () => {
    // The upstream returns just after a failed attempt, so the next one is seconds away.
    const seen = attempts.length;
    await waitUntil('another connection attempt', () => attempts.length > seen, 15_000);
    up = true;
    const returned = Date.now();
    expect(await getBundle()).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    const recovered = await waitFor(
      'a call to succeed once the connection is back',
      async () => ((await getBundle()).ok ? Date.now() : undefined),
      20_000,
      100,
    );
    const reconnect = attempts.find((t) => t >= returned);
    expect(reconnect).toBeDefined();
    // The attempt that connected came on the backoff's schedule, seconds after the upstream was back.
    expectOnSchedule(attempts);
    expect(reconnect! - returned).toBeGreaterThan(2000);
    expect(recovered).toBeGreaterThanOrEqual(reconnect!);
  });
});
