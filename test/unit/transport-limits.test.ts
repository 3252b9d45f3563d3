import * as grpc from '@grpc/grpc-js';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { toPem } from '../../identity-core/spiffe/pem.js';
import { PeerTaggedServer, type PeerInfo } from '../../identity-core/transport/peer-tagged-server.js';
import { CLIENT_PREFACE, ErrorCode, FrameType } from '../../identity-core/transport/http2-frames.js';
import {
  RST_STREAM,
  RawHttp2Client,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  clientHandshake,
  grpcRequestHeaders,
  headerBlockFrames,
  literalHeader,
  type ReceivedFrame,
} from '../support/raw-http2-client.js';
import { within } from '../support/waits.js';

/**
 * The connection limits of the listeners the Workload API and the server endpoints use, exercised
 * with a raw HTTP/2 client on a real PeerTaggedServer. Timeouts are shortened so that the tests wait
 * on close events for well under a second.
 */

const raw = (b: Buffer) => b;
const service: grpc.ServiceDefinition = {
  Who: {
    path: '/test.Limits/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
  Hold: {
    path: '/test.Limits/Hold',
    requestStream: false,
    responseStream: true,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};
const Client = grpc.makeGenericClientConstructor(service, 'Limits');

const HANDSHAKE_TIMEOUT_MS = 300;
const IDLE_TIMEOUT_MS = 800;

let dir: string;
let socketPath: string;
let peers: PeerTaggedServer;
const refusals: Array<{ peer: PeerInfo; reason: string }> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'transport-limits-'));
  socketPath = join(dir, 'api.sock');
  peers = new PeerTaggedServer({
    limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS },
    onRefused: (peer, reason) => refusals.push({ peer, reason }),
  });
  peers.grpcServer.addService(service, {
    Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, Buffer.from(JSON.stringify(peers.peerOf(call) ?? null))),
    // Holds its stream open until the client goes away.
    Hold: () => undefined,
  });
  await peers.listenUnix(socketPath, 0o700);
});

afterAll(async () => {
  await peers?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A unary call through the guard; resolves with what the handler learnt about its caller. */
async function whoAmI(): Promise<unknown> {
  const client = new Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  try {
    const reply = await new Promise<Buffer>((resolve, reject) =>
      (client as unknown as { Who(req: Buffer, cb: (e: Error | null, r: Buffer) => void): void }).Who(
        Buffer.alloc(0),
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
    return JSON.parse(reply.toString()) as unknown;
  } finally {
    client.close();
  }
}

const isGoaway = (f: ReceivedFrame) => f.type === FrameType.GOAWAY;
const goawayCode = (f: ReceivedFrame) => f.payload.readUInt32BE(4);

describe('the connection guard in front of grpc-js', () => {
  it('refuses a limit that is not a positive whole number, naming it', () => {
    expect(() => new PeerTaggedServer({ limits: { handshakeTimeoutMs: 0 } })).toThrow(
      'connection limit handshakeTimeoutMs: must be a positive whole number, got 0',
    );
    expect(() => new PeerTaggedServer({ limits: { maxHeaderBlockBytes: 1.5 } })).toThrow(
      /maxHeaderBlockBytes/,
    );
  });

  it('serves a normal call and still knows the caller by its kernel credentials', async () => {
    expect(await whoAmI()).toEqual({
      kind: 'unix',
      credentials: { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() },
    });
  });

  it('answers a 400 KiB header with a GOAWAY carrying an error and closes within 1 s', async () => {
    const client = await RawHttp2Client.connect(socketPath);
    const block = grpcRequestHeaders('/test.Limits/Who', [
      literalHeader('x-big', Buffer.alloc(400 * 1024, 'a')),
    ]);
    client.write(Buffer.concat([clientHandshake(), headerBlockFrames(1, block)]));
    await within('the oversized-header connection to close', client.closed, 1000);
    const goaway = client.frames.find(isGoaway);
    expect(goaway, 'a GOAWAY before the close').toBeDefined();
    expect(goawayCode(goaway!)).not.toBe(ErrorCode.NO_ERROR);
  });

  it('refuses a header block just over 64 KiB of ordinary headers with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await RawHttp2Client.connect(socketPath);
    const headers = Array.from({ length: 70 }, (_, i) => literalHeader(`x-h${i}`, 'b'.repeat(1000)));
    client.write(
      Buffer.concat([
        clientHandshake(),
        headerBlockFrames(3, grpcRequestHeaders('/test.Limits/Who', headers)),
      ]),
    );
    await within('the connection to close', client.closed, 1000);
    const goaway = client.frames.find(isGoaway);
    expect(goaway && goawayCode(goaway)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(goaway!.payload.readUInt32BE(0), 'last stream id').toBe(3);
    expect(goaway!.payload.subarray(8).toString()).toMatch(/at most 65536 are allowed/);
    expect(refusals.find((r) => /at most 65536/.test(r.reason))?.peer).toMatchObject({
      kind: 'unix',
      credentials: { pid: process.pid },
    });
  });

  it('closes 20 sockets that never finish the handshake once the handshake timeout passes', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawHttp2Client.connect(socketPath)));
    // Half say nothing; half stop inside the preface, or after it without SETTINGS.
    clients.slice(10, 15).forEach((c) => c.write(CLIENT_PREFACE.subarray(0, 10)));
    clients.slice(15).forEach((c) => c.write(CLIENT_PREFACE));
    const startedAt = Date.now();
    const closedAfter = await within(
      'all 20 slow sockets to be closed',
      Promise.all(clients.map((c) => c.closed)),
      3000,
    );
    // Timed from the client's side, which learns of the connection a little after the server accepts it.
    expect(Math.min(...closedAfter)).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
    expect(Date.now() - startedAt).toBeLessThan(3000);
    expect(
      refusals.filter((r) => /no HTTP\/2 preface and SETTINGS within 300 ms/.test(r.reason)),
    ).toHaveLength(20);
    // The server kept serving throughout.
    expect(await whoAmI()).toMatchObject({ kind: 'unix' });
  });

  it('keeps a client that completed its handshake past the handshake timeout, then closes it when idle', async () => {
    const client = await RawHttp2Client.connect(socketPath);
    client.write(clientHandshake());
    const closedAfter = await within('the idle connection to close', client.closed, 3000);
    expect(closedAfter).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 200);
    const goaway = client.frames.find(isGoaway);
    expect(goaway && goawayCode(goaway)).toBe(ErrorCode.NO_ERROR);
  });

  it('advertises and enforces 100 concurrent streams while other calls still work', async () => {
    const client = await RawHttp2Client.connect(socketPath);
    const opens = Array.from({ length: 150 }, (_, i) =>
      headerBlockFrames(1 + 2 * i, grpcRequestHeaders('/test.Limits/Hold')),
    );
    client.write(Buffer.concat([clientHandshake(), ...opens]));
    const refused = (f: ReceivedFrame) => f.type === RST_STREAM && f.payload.readUInt32BE(0) === 0x7;
    expect(await within('50 refused streams', client.countFrames(refused, 50), 3000)).toBe(true);
    const settings = client.frames.find((f) => f.type === FrameType.SETTINGS && f.length > 0);
    expect(settings?.payload.readUInt16BE(0)).toBe(SETTINGS_MAX_CONCURRENT_STREAMS);
    expect(settings?.payload.readUInt32BE(2)).toBe(100);
    const refusedIds = client.frames.filter(refused).map((f) => f.streamId);
    expect(Math.min(...refusedIds), 'the first 100 streams were accepted').toBe(201);
    expect(client.isClosed, 'refusing streams is not closing the connection').toBe(false);
    expect(await whoAmI()).toMatchObject({ kind: 'unix' });
    client.destroy();
  });
});

describe('the connection guard on a TLS listener', () => {
  let tlsPeers: PeerTaggedServer;
  let port: number;
  let certificatePem: string;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certificate = await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 600 });
    certificatePem = toPem(certificate.der);
    tlsPeers = new PeerTaggedServer({ limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } });
    tlsPeers.grpcServer.addService(service, {
      Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
        callback(null, Buffer.from(JSON.stringify(tlsPeers.peerOf(call) ?? null))),
      Hold: () => undefined,
    });
    port = await tlsPeers.listenTls('127.0.0.1', 0, {
      certificateChain: [certificate.der],
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    });
  });

  afterAll(async () => {
    await tlsPeers?.close();
  });

  it('serves a call over TLS and tags it as a TLS peer', async () => {
    const client = new Client(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(Buffer.from(certificatePem), null, null, {
        // The certificate names a SPIFFE trust domain, not a host.
        checkServerIdentity: () => undefined,
      }),
    );
    try {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        (client as unknown as { Who(req: Buffer, cb: (e: Error | null, r: Buffer) => void): void }).Who(
          Buffer.alloc(0),
          (error, response) => (error ? reject(error) : resolve(response)),
        ),
      );
      const before = Date.now();
      expect(JSON.parse(reply.toString())).toEqual({
        kind: 'tls',
        certificateChain: [],
        handshakeAt: expect.any(Number),
      });
      expect(JSON.parse(reply.toString()).handshakeAt).toBeLessThanOrEqual(before);
    } finally {
      client.close();
    }
  });

  it('closes a TCP connection that never starts TLS, and a TLS one that never sends the preface', async () => {
    const silentTcp = net.connect(port, '127.0.0.1');
    silentTcp.on('error', () => undefined);
    const tcpClosed = new Promise<void>((resolve) => silentTcp.once('close', () => resolve()));
    const silentTls = await RawHttp2Client.connectTls(port);
    await within('both silent connections to close', Promise.all([tcpClosed, silentTls.closed]), 3000);
  });

  it('answers an oversized header block over TLS with GOAWAY ENHANCE_YOUR_CALM and closes', async () => {
    const client = await RawHttp2Client.connectTls(port);
    const headers = Array.from({ length: 70 }, (_, i) => literalHeader(`x-h${i}`, 'b'.repeat(1000)));
    client.write(
      Buffer.concat([
        clientHandshake(),
        headerBlockFrames(1, grpcRequestHeaders('/test.Limits/Who', headers)),
      ]),
    );
    await within('the connection to close', client.closed, 1000);
    const goaway = client.frames.find(isGoaway);
    expect(goaway && goawayCode(goaway)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });
});
