import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { findProcess } from '../../deployment/host/managed-process.js';
import { packageRoot } from '../../deployment/host/package-root.js';
import {
  ensureProbes,
  probeEndpoints,
  readSamples,
  stopProbes,
  type ProbeEndpoint,
  type ProbedDeployment,
} from '../../deployment/probes/probe-fleet.js';
import { handshake } from '../../deployment/probes/probe-handshake.js';
import { parsePemCertificates } from '../../identity-core/spiffe/pem.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import type { HandshakeSample, ProbeSample, SvidSample } from '../../deployment/probes/probe-sample.js';
import { observeIdentity } from '../../scenarios/observed-identity.js';
import { makeRunDir } from '../support/run-dir.js';
import { ok, waitFor } from '../support/waits.js';

/**
 * Two probes in a ring under one agent, with 20 s X509-SVIDs (30 s lifetimes with SPIRE's 10 s
 * backdating): they record SVIDs, handshakes and JWT-SVIDs; with the agent away past the SVIDs'
 * expiry their handshakes fail and a gap shows; they recover with the agent; a probe killed with
 * SIGKILL loses no sample; and an SVID of a revoked authority, replayed, is refused by the peer.
 */
const TD = 'example.org';
const NODE = `spiffe://${TD}/probes/node`;
const W0 = `spiffe://${TD}/probes/w0`;
const W1 = `spiffe://${TD}/probes/w1`;

const svidsOf = (samples: ProbeSample[], workload: string) =>
  samples.filter((s): s is SvidSample => s.kind === 'svid' && s.workload === workload);
const handshakesOf = (samples: ProbeSample[], workload: string) =>
  samples.filter((s): s is HandshakeSample => s.kind === 'handshake' && s.workload === workload);

describe('probe workloads', () => {
  const run = makeRunDir('sdpr-');
  let stack: IdentityStack;
  let endpoints: ProbeEndpoint[];
  const fleet: ProbedDeployment = {
    plan: { runDir: run.dir },
    workloads: async () =>
      [W0, W1].map((spiffeId) => ({ group: 'upstream', spiffeId, socket: stack.agentSocket })),
  };
  const samples = (since?: number) => readSamples(fleet, since);
  const bundleRoots = async (endpoint: ProbeEndpoint) =>
    parsePemCertificates(await endpoint.currentBundle()).map(x509AuthorityId);

  beforeAll(async () => {
    stack = await IdentityStack.create({
      runDir: run.dir,
      trustDomain: TD,
      x509SvidTtl: '20s',
      jwtSvidTtl: '20s',
      // The agent's own SVID outlives the outage, so the restarted agent resumes without a new token.
      agentTtl: '5m',
      syncInterval: '1s',
    });
    await stack.startServer();
    const token = await stack.generateToken(NODE);
    for (const id of [W0, W1])
      await ok(
        stack.serverCli([
          'entry',
          'create',
          '-parentID',
          NODE,
          '-spiffeID',
          id,
          '-selector',
          `unix:uid:${process.getuid!()}`,
        ]),
      );
    await stack.startAgent(token);
    expect(await ensureProbes(fleet)).toEqual({ started: 2, adopted: 0 });
    endpoints = await probeEndpoints(fleet);
  }, 120_000);

  afterAll(async () => {
    await stopProbes(fleet);
    await stack?.stop();
    run.remove();
  }, 60_000);

  it('refuses bad arguments, naming each', async () => {
    const script = join(packageRoot(), 'dist', 'deployment', 'probes', 'probe-main.js');
    const args = [
      ...['--socket', '/nonexistent.sock', '--spiffe-id', 'spiffe://Bad/x', '--listen-port', '70000'],
      ...['--peer-port', 'x', '--peer-id', W1, '--samples', join(run.dir, 'x.jsonl')],
      ...['--audience', '', '--svid-dir', join(run.dir, 'x')],
    ];
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(process.execPath, [script, ...args], (error, _stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stderr }),
      ),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--spiffe-id: "spiffe://Bad/x" is not a SPIFFE ID');
    expect(result.stderr).toContain('--listen-port: a TCP port is between 1 and 65535');
    expect(result.stderr).toContain('--peer-port: expected a TCP port');
    expect(result.stderr).toContain('--audience must not be empty');
  });

  it('records SVIDs, handshakes with its peer and validated JWT-SVIDs', async () => {
    const started = Date.now();
    await waitFor(
      'an SVID, a successful handshake and a valid JWT-SVID from each probe',
      async () => {
        const all = samples();
        const done = [W0, W1].every((w) =>
          ['svid', 'handshake', 'jwt'].every((kind) =>
            all.some(
              (s) =>
                s.workload === w &&
                s.kind === kind &&
                (s.kind === 'svid' || (s.kind !== 'identities' && s.ok)),
            ),
          ),
        );
        return done || undefined;
      },
      30_000,
    );
    const all = samples();
    const active = /Active X\.509 authority:\s+Authority ID: (\S+)/.exec(
      await ok(stack.serverCli(['localauthority', 'x509', 'show'])),
    )![1];
    for (const [endpoint, peer] of [
      [endpoints[0]!, W1],
      [endpoints[1]!, W0],
    ] as const) {
      expect(endpoint.peer.spiffeId).toBe(peer);
      const svid = svidsOf(all, endpoint.spiffeId)[0]!;
      expect(svid.notAfter - svid.notBefore).toBe(30_000);
      expect(svid.authority).toBe(active);
      expect(svid.serial).toMatch(/^[0-9A-F]+$/);
      // The stored SVID is the one the sample describes.
      const stored = endpoint.svidFiles(svid.serial)!;
      const leaf = new X509Certificate(parsePemCertificates(stored.chainPem)[0]!);
      expect(leaf.serialNumber).toBe(svid.serial);
      expect(leaf.subjectAltName).toBe(`URI:${endpoint.spiffeId}`);
      expect(await bundleRoots(endpoint)).toEqual([active]);
      const shakes = handshakesOf(all, endpoint.spiffeId);
      expect(shakes.some((s) => s.ok && s.peer === peer)).toBe(true);
      const jwt = all.find((s) => s.kind === 'jwt' && s.workload === endpoint.spiffeId && s.ok);
      expect(jwt?.kind === 'jwt' && jwt.expiresAt! - jwt.at).toBeGreaterThan(15_000);
      expect(all.some((s) => s.kind === 'stream' && s.workload === endpoint.spiffeId && s.ok)).toBe(true);
    }
    // Roughly one handshake and one JWT-SVID a second each, over the window the samples now span.
    await waitFor(
      'handshake and JWT-SVID samples of each probe 3.5 s after the first checks',
      async () =>
        [W0, W1].every((w) =>
          ['handshake', 'jwt'].every((kind) =>
            samples(started + 4500).some((s) => s.workload === w && s.kind === kind),
          ),
        ) || undefined,
      15_000,
    );
    const recent = samples(started + 1000).filter((s) => s.at < Date.now() - 500);
    const span = (Date.now() - 500 - (started + 1000)) / 1000;
    for (const w of [W0, W1])
      for (const kind of ['handshake', 'jwt']) {
        const n = recent.filter((s) => s.workload === w && s.kind === kind).length;
        expect(n).toBeGreaterThanOrEqual(Math.floor(span) - 1);
        expect(n).toBeLessThanOrEqual(Math.ceil(span) + 1);
      }
    expect(await ensureProbes(fleet)).toEqual({ started: 0, adopted: 2 });
  }, 60_000);

  it('handshakes with a stored SVID through the reusable handshake, judging the peer', async () => {
    const [e0, e1] = endpoints as [ProbeEndpoint, ProbeEndpoint];
    const latest = svidsOf(samples(), W0).at(-1)!;
    const credentials = e0.svidFiles(latest.serial)!;
    const bundle = await e1.currentBundle();
    const accepted = await handshake({ ...credentials, bundle, port: e1.listenPort, expectedPeerId: W1 });
    expect(accepted).toMatchObject({ ok: true });
    expect(accepted.latencyMs).toBeGreaterThan(0);
    const wrongPeer = await handshake({ ...credentials, bundle, port: e1.listenPort, expectedPeerId: W0 });
    expect(wrongPeer).toMatchObject({ ok: false, refusedBy: 'self' });
    expect(wrongPeer.error).toContain(`server is not ${W0}: it is ${W1}`);
    const nobody = await handshake({ ...credentials, bundle, port: 1, expectedPeerId: W1 });
    expect(nobody.ok).toBe(false);
    expect(nobody.refusedBy).toBeUndefined();
  });

  it('fails handshakes and shows a gap while the agent is away past expiry, then recovers', async () => {
    for (const w of [W0, W1])
      await waitFor('an SVID before the outage', async () => svidsOf(samples(), w).at(-1), 30_000);
    const stopping = Date.now();
    await stack.agents[0]!.stop();
    // Only now is the agent gone: it serves calls while it drains its streams.
    const stoppedAt = Date.now();
    const held = [W0, W1].map((w) => svidsOf(samples(), w).at(-1)!);
    const firstExpiry = Math.min(...held.map((s) => s.notAfter));
    const lastExpiry = Math.max(...held.map((s) => s.notAfter));
    expect(lastExpiry - stoppedAt).toBeLessThan(30_000);
    // Wait for what the outage must show: two handshakes of each probe after both SVIDs expired, and
    // a JWT-SVID attempt of each with the agent away.
    await waitFor(
      'two handshakes of each probe after both held SVIDs expired, and a JWT-SVID attempt of each',
      async () =>
        [W0, W1].every(
          (w) =>
            handshakesOf(samples(lastExpiry), w).filter((s) => s.at > lastExpiry + 1000).length >= 2 &&
            samples(stoppedAt + 1500).some((s) => s.kind === 'jwt' && s.workload === w),
        ) || undefined,
      lastExpiry - Date.now() + 20_000,
    );
    const restartedAt = Date.now();
    await stack.ensureAgent(0, NODE);
    await waitFor(
      'a new SVID and a successful handshake for each probe',
      async () => {
        const after = samples(restartedAt);
        const back = [W0, W1].every(
          (w) => svidsOf(after, w).length > 0 && handshakesOf(after, w).some((s) => s.ok),
        );
        return back || undefined;
      },
      30_000,
    );

    const all = samples(stoppedAt);
    for (const [i, w] of [W0, W1].entries()) {
      const shakes = handshakesOf(all, w);
      // With the agent gone the probes keep using what they hold: fine until one of the pair expires.
      const whileValid = shakes.filter((s) => s.at > stoppedAt + 1000 && s.at < firstExpiry - 1500);
      expect(whileValid.every((s) => s.ok)).toBe(true);
      const whileExpired = shakes.filter((s) => s.at > lastExpiry + 1000 && s.at < restartedAt);
      expect(whileExpired.length).toBeGreaterThanOrEqual(2);
      expect(whileExpired.every((s) => !s.ok)).toBe(true);
      for (const s of whileExpired) expect(s.error).toMatch(/certificate rejected: .*CERT_HAS_EXPIRED/);
      const jwts = all.filter((s) => s.kind === 'jwt' && s.workload === w && s.at > stoppedAt + 1500);
      const jwtWhileAway = jwts.filter((s) => s.at < restartedAt);
      expect(jwtWhileAway.length).toBeGreaterThan(0);
      expect(jwtWhileAway.filter((s) => s.kind === 'jwt' && s.ok)).toEqual([]);
      const stream = samples(stopping).filter((s) => s.kind === 'stream' && s.workload === w);
      expect(stream.map((s) => s.kind === 'stream' && s.ok)).toEqual([false, true]);
      expect(stream[1]!.at).toBeGreaterThanOrEqual(restartedAt);

      const observed = observeIdentity(
        samples().filter((s) => s.workload === w),
        { start: stoppedAt, end: Date.now() },
      );
      const renewed = svidsOf(all, w).find((s) => s.at >= restartedAt)!;
      expect(observed.gaps).toEqual([{ start: held[i]!.notAfter, end: renewed.at }]);
      expect(renewed.notAfter).toBeGreaterThan(renewed.at);
    }
    // The SVID held through the outage, replayed now that it has expired, is refused as real TLS would.
    const [e0, e1] = endpoints as [ProbeEndpoint, ProbeEndpoint];
    const expired = await handshake({
      ...e0.svidFiles(held[0]!.serial)!,
      bundle: await e1.currentBundle(),
      port: e1.listenPort,
      expectedPeerId: W1,
    });
    expect(expired).toMatchObject({ ok: false, refusedBy: 'peer' });
    expect(expired.error).toMatch(/client certificate rejected: .*CERT_HAS_EXPIRED/);
  }, 90_000);

  it('loses no sample when a probe is killed, and a restarted probe appends', async () => {
    const [e0] = endpoints as [ProbeEndpoint];
    const probe = findProcess(e0.dir, 'probe')!;
    expect(probe.isRunning()).toBe(true);
    process.kill(probe.pid, 'SIGKILL');
    await waitFor('the probe to be gone', async () => !findProcess(e0.dir, 'probe') || undefined, 5000);
    const before = readFileSync(e0.samplesFile, 'utf8');
    const lines = before.split('\n');
    expect(lines.at(-1)).toBe('');
    for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
    const serialsBefore = svidsOf(samples(), W0).map((s) => s.serial);

    expect(await ensureProbes(fleet)).toEqual({ started: 1, adopted: 1 });
    expect(findProcess(e0.dir, 'probe')!.pid).not.toBe(probe.pid);
    await waitFor(
      'the restarted probe to shake hands',
      async () => {
        const text = readFileSync(e0.samplesFile, 'utf8');
        const added = text.slice(before.length).split('\n').filter(Boolean);
        return added.some((line) => (JSON.parse(line) as ProbeSample).kind === 'handshake') || undefined;
      },
      15_000,
    );
    expect(readFileSync(e0.samplesFile, 'utf8').startsWith(before)).toBe(true);
    // The SVID it held is not recorded twice: the restarted probe knows what it stored.
    const serialsAfter = svidsOf(samples(), W0).map((s) => s.serial);
    expect(new Set(serialsAfter).size).toBe(serialsAfter.length);
    expect(serialsAfter.slice(0, serialsBefore.length)).toEqual(serialsBefore);
  }, 40_000);

  it('has the peer refuse a replayed SVID of a revoked authority', async () => {
    const [e0, e1] = endpoints as [ProbeEndpoint, ProbeEndpoint];
    // Start from a fresh SVID so the one replayed is still within its lifetime after the rotation.
    const freshSince = Date.now();
    const fresh = await waitFor(
      'a fresh SVID for the first probe',
      async () => svidsOf(samples(freshSince), W0).at(-1),
      25_000,
    );
    const original = fresh.authority;
    const prepared = await ok(stack.serverCli(['localauthority', 'x509', 'prepare']));
    const next = /Authority ID: (\S+)/.exec(prepared)![1]!;
    for (const e of [e0, e1])
      await waitFor(
        'both authorities in the probe bundle',
        async () => (await bundleRoots(e)).length === 2 || undefined,
        15_000,
      );
    await ok(stack.serverCli(['localauthority', 'x509', 'activate', '-authorityID', next]));
    await ok(stack.serverCli(['localauthority', 'x509', 'taint', '-authorityID', original]));
    for (const w of [W0, W1])
      await waitFor(
        'an SVID of the new authority',
        async () => svidsOf(samples(), w).some((s) => s.authority === next) || undefined,
        20_000,
      );
    await ok(stack.serverCli(['localauthority', 'x509', 'revoke', '-authorityID', original]));
    for (const e of [e0, e1])
      await waitFor(
        'the revoked authority gone from the probe bundle',
        async () => ((await bundleRoots(e)).join() === next ? true : undefined),
        15_000,
      );

    const bundle = await e1.currentBundle();
    const replay = (serial: string) =>
      handshake({ ...e0.svidFiles(serial)!, bundle, port: e1.listenPort, expectedPeerId: W1 });
    expect(fresh.notAfter).toBeGreaterThan(Date.now() + 1000);
    const revoked = await replay(fresh.serial);
    expect(revoked).toMatchObject({ ok: false, refusedBy: 'peer' });
    expect(revoked.error).toMatch(
      /client certificate rejected: .*\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT)/,
    );
    const current = svidsOf(samples(), W0).at(-1)!;
    expect(current.authority).toBe(next);
    expect(await replay(current.serial)).toMatchObject({ ok: true });
    // And the probes themselves, on the new authority, still shake hands.
    const since = Date.now();
    await waitFor(
      'handshakes on the new authority',
      async () => handshakesOf(samples(since), W1).some((s) => s.ok) || undefined,
      10_000,
    );
  }, 90_000);
});
