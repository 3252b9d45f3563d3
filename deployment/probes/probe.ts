/**
 * A probe: a workload that uses its identity the way a service would and writes down how that went.
 * It holds a FetchX509SVID stream (recording every new SVID and every break of the stream), serves
 * mTLS with its current SVID, dials its peer every second, and every second fetches a JWT-SVID and
 * validates it against the JWT bundle it streams. Each sample is one appended JSON line, written as
 * it is taken, so nothing recorded is lost when anything crashes.
 */
import { X509Certificate } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { JWTBundlesResponse__Output } from '../../identity-core/proto/gen/JWTBundlesResponse.js';
import type { X509SVIDResponse__Output } from '../../identity-core/proto/gen/X509SVIDResponse.js';
import { WorkloadClient, workloadMetadata } from '../../identity-core/proto/services.js';
import { certificateKeyIds } from '../../identity-core/spiffe/certificate-key-ids.js';
import { validateJwtSvid } from '../../identity-core/spiffe/jwt-svid.js';
import { splitDerCertificates, toPem } from '../../identity-core/spiffe/pem.js';
import { SpiffeId } from '../../identity-core/spiffe/spiffe-id.js';
import { parseJwtBundleJson, type TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';
import type { ProbeSample } from './probe-sample.js';
import { HandshakeServer, handshake, type SvidCredentials } from './probe-handshake.js';
import { storedSerials, writeBundleFile, writeSvidFile } from './probe-svid-store.js';
import { fetchJwtSvid } from './workload-fetch.js';

export interface ProbeOptions {
  /** The agent's Workload API socket. */
  socket: string;
  spiffeId: string;
  listenPort: number;
  peerPort: number;
  peerId: string;
  samplesFile: string;
  audience: string;
  svidDir: string;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface RunningProbe {
  stop(): Promise<void>;
}

const PERIOD_MS = 1000;
const CALL_TIMEOUT_MS = 3000;

/** A sample before the probe stamps its SPIFFE ID on it. */
type Unstamped<T> = T extends unknown ? Omit<T, 'workload'> : never;
type Sample = Unstamped<ProbeSample>;

interface HeldSvid extends SvidCredentials {
  serial: string;
}

/**
 * A server stream of the agent's held open for good: opened again a second after it breaks,
 * `onBroken` told at every break (and every failed reopening), `onData` for every message.
 */
function holdStream<Message>(
  socket: string,
  open: (client: InstanceType<typeof WorkloadClient>) => grpc.ClientReadableStream<Message>,
  onData: (message: Message) => void,
  onBroken: (reason: string) => void,
): { close(): void } {
  let closed = false;
  let current: { cancel(): void } | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = () => {
    const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
    const stream = open(client);
    let over = false;
    const broken = (reason: string) => {
      if (over) return;
      over = true;
      stream.cancel();
      client.close();
      if (closed) return;
      onBroken(reason);
      retry = setTimeout(connect, PERIOD_MS);
    };
    stream.on('data', onData);
    stream.on('error', (error: grpc.ServiceError) => broken(error.details || error.message));
    stream.on('end', () => broken('the agent ended the stream'));
    current = { cancel: () => broken('closed') };
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      current?.cancel();
    },
  };
}

/** Runs `step` every second (from the start of one to the start of the next) until stopped. */
function everySecond(step: () => Promise<void>): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await step();
      const rest = PERIOD_MS - (Date.now() - started);
      if (rest > 0 && !stopped)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, rest);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

export async function startProbe(options: ProbeOptions): Promise<RunningProbe> {
  const trustDomain = SpiffeId.parse(options.spiffeId).trustDomain;
  mkdirSync(dirname(options.samplesFile), { recursive: true });
  mkdirSync(options.svidDir, { recursive: true });
  const record = (sample: Sample) =>
    appendFileSync(options.samplesFile, `${JSON.stringify({ ...sample, workload: options.spiffeId })}\n`);

  let held: HeldSvid | undefined;
  let bundlePem: string | undefined;
  let jwtBundle: TrustBundle | undefined;
  let streamUp: boolean | undefined;
  // Every SPIFFE ID the agent offers this workload: registrations come and go (a restored backup).
  let offered: string | undefined;
  // A restarted probe already recorded what it stored; the agent re-sends the SVID it holds.
  const recorded = new Set(storedSerials(options.svidDir));

  const server = new HandshakeServer(trustDomain);
  await server.listen(options.listenPort);
  options.log('listening', { port: options.listenPort });

  const onSvids = (response: X509SVIDResponse__Output) => {
    if (streamUp !== true) record({ kind: 'stream', at: Date.now(), ok: true });
    streamUp = true;
    const ids = response.svids.map((s) => s.spiffeId).sort();
    if (ids.join('\n') !== offered) {
      offered = ids.join('\n');
      record({ kind: 'identities', at: Date.now(), spiffeIds: ids });
    }
    const mine = response.svids.find((s) => s.spiffeId === options.spiffeId);
    if (!mine) {
      options.log('the agent sent no SVID for us', { spiffeIds: response.svids.map((s) => s.spiffeId) });
      return;
    }
    const chain = splitDerCertificates(Buffer.from(mine.x509Svid));
    const leaf = new X509Certificate(chain[0]!);
    const svid: HeldSvid = {
      serial: leaf.serialNumber,
      chainPem: chain.map((der) => toPem(der)).join(''),
      keyPem: toPem(Buffer.from(mine.x509SvidKey), 'PRIVATE KEY'),
    };
    const bundle = splitDerCertificates(Buffer.from(mine.bundle))
      .map((der) => toPem(der))
      .join('');
    if (svid.serial !== held?.serial || bundle !== bundlePem) {
      server.update({ ...svid, bundle });
      if (bundle !== bundlePem) writeBundleFile(options.svidDir, bundle);
      held = svid;
      bundlePem = bundle;
    }
    if (recorded.has(svid.serial)) return;
    record({
      kind: 'svid',
      at: Date.now(),
      serial: svid.serial,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
      authority: certificateKeyIds(chain[0]!).authorityKeyId,
    });
    writeSvidFile(options.svidDir, svid.serial, svid);
    recorded.add(svid.serial);
    options.log('new SVID', { serial: svid.serial, notAfter: leaf.validTo });
  };

  const x509 = holdStream(
    options.socket,
    (client) => client.FetchX509SVID({}, workloadMetadata()),
    onSvids,
    (reason) => {
      if (streamUp !== false) record({ kind: 'stream', at: Date.now(), ok: false, error: reason });
      streamUp = false;
    },
  );
  const jwtBundles = holdStream(
    options.socket,
    (client) => client.FetchJWTBundles({}, workloadMetadata()),
    (response: JWTBundlesResponse__Output) => {
      const json = response.bundles[`spiffe://${trustDomain}`];
      if (json) jwtBundle = parseJwtBundleJson(json.toString('utf8'), trustDomain);
    },
    () => undefined,
  );

  const handshakes = everySecond(async () => {
    const at = Date.now();
    if (!held || bundlePem === undefined) {
      record({
        kind: 'handshake',
        at,
        peer: options.peerId,
        ok: false,
        latencyMs: 0,
        error: 'no X509-SVID yet',
      });
      return;
    }
    const result = await handshake({
      ...held,
      bundle: bundlePem,
      port: options.peerPort,
      expectedPeerId: options.peerId,
      timeoutMs: CALL_TIMEOUT_MS,
    });
    record({
      kind: 'handshake',
      at,
      peer: options.peerId,
      ok: result.ok,
      latencyMs: result.latencyMs,
      ...(result.error !== undefined ? { error: result.error } : {}),
    });
  });

  const jwts = everySecond(async () => {
    const at = Date.now();
    const started = performance.now();
    const latencyMs = () => Math.round((performance.now() - started) * 10) / 10;
    try {
      const token = await fetchJwtSvid(options.socket, options.spiffeId, options.audience, CALL_TIMEOUT_MS);
      if (!jwtBundle) throw new Error('no JWT bundle received yet');
      const { claims } = await validateJwtSvid(token, { bundle: jwtBundle, audience: options.audience });
      record({
        kind: 'jwt',
        at,
        ok: true,
        latencyMs: latencyMs(),
        ...(typeof claims.exp === 'number' ? { expiresAt: claims.exp * 1000 } : {}),
      });
    } catch (error) {
      record({ kind: 'jwt', at, ok: false, latencyMs: latencyMs(), error: (error as Error).message });
    }
  });

  return {
    async stop() {
      x509.close();
      jwtBundles.close();
      await Promise.all([handshakes.stop(), jwts.stop()]);
      await server.close();
    },
  };
}
