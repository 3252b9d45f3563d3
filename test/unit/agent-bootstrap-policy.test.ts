import { generateKeyPairSync } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { BootstrapState } from '../../identity-core/agent/bootstrap-state.js';
import { AgentMetrics } from '../../identity-core/agent/agent-metrics.js';
import {
  attestWithRetry,
  effectiveRebootstrapMode,
  isUnknownAuthorityError,
} from '../../identity-core/agent/bootstrap-policy.js';
import { SvidCache } from '../../identity-core/agent/svid-cache.js';
import { AgentFatalError, Synchronizer, type AgentIdentity } from '../../identity-core/agent/synchronizer.js';
import type { ServerConnection } from '../../identity-core/transport/server-connection.js';

/** The agent's bootstrap knobs as SPIRE v1.13.3's agent applies them to a join_token agent. */
const silent = pino({ level: 'silent' });

function recordingLogger() {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
  return { logger, warnings };
}

const status = (code: grpc.status, details: string) =>
  Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details });

/** What grpc-js reports when the server's certificate does not chain to the agent's roots (seen on Node 20). */
const UNTRUSTED_SERVER = status(
  grpc.status.UNAVAILABLE,
  'No connection established. Last error: Error: self-signed certificate. Resolution note: ',
);

describe('rebootstrap_mode with a join_token agent', () => {
  it('keeps "never"', () => {
    expect(effectiveRebootstrapMode('never', false, silent)).toBe('never');
  });

  it('disables "auto" with SPIRE\'s warning, since join_token cannot re-attest', () => {
    const { logger, warnings } = recordingLogger();
    expect(effectiveRebootstrapMode('auto', false, logger)).toBe('never');
    expect(warnings).toEqual([
      'you have requested rebootstrap support but the NodeAttestor plugin or the spire server configuration is not allowing it. Disabling',
    ]);
  });

  it('refuses "always"', () => {
    expect(() => effectiveRebootstrapMode('always', false, silent)).toThrow(
      /requested rebootstrap support but the NodeAttestor plugin .* is not allowing it/,
    );
  });

  it('keeps a mode for a node attestor that can re-attest', () => {
    expect(effectiveRebootstrapMode('always', true, silent)).toBe('always');
  });
});

describe('retry_bootstrap', () => {
  const clockedRetry = (attest: () => Promise<string>, retry: boolean, mode: 'never' | 'auto' = 'never') => {
    let now = 0;
    const sleeps: number[] = [];
    const result = attestWithRetry(attest, {
      retry,
      rebootstrapMode: mode,
      logger: silent,
      random: () => 0.5,
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
    });
    return { result, sleeps };
  };

  it('retries a failed attestation every 5 s, ×1.5, until it succeeds', async () => {
    let attempts = 0;
    const { result, sleeps } = clockedRetry(async () => {
      if (++attempts < 3) throw status(grpc.status.UNAVAILABLE, 'connection refused');
      return 'attested';
    }, true);
    await expect(result).resolves.toBe('attested');
    expect(sleeps).toEqual([5000, 7500]);
  });

  it('gives up after a minute (SPIRE: the backoff may not pass its maximum elapsed time)', async () => {
    const { result, sleeps } = clockedRetry(async () => {
      throw status(grpc.status.UNAVAILABLE, 'connection refused');
    }, true);
    await expect(result).rejects.toThrow(/connection refused/);
    // 5 + 7.5 + 11.25 + 16.875 = 40.6 s; the next delay (25.3 s) would pass the minute.
    expect(sleeps).toEqual([5000, 7500, 11250, 16875]);
  });

  it('does not retry a refusal (PermissionDenied), nor anything with retry_bootstrap = false', async () => {
    const refused = clockedRetry(async () => {
      throw status(grpc.status.PERMISSION_DENIED, 'failed to attest: join token does not exist');
    }, true);
    await expect(refused.result).rejects.toThrow(/join token does not exist/);
    expect(refused.sleeps).toEqual([]);
    const once = clockedRetry(async () => {
      throw status(grpc.status.UNAVAILABLE, 'connection refused');
    }, false);
    await expect(once.result).rejects.toThrow(/connection refused/);
    expect(once.sleeps).toEqual([]);
  });
});

describe('an untrusted server root', () => {
  /** Runs a synchronizer whose every call fails with `error`, until it stops the agent or lives through two failed syncs. */
  const run = async (error: Error, rebootstrapDelayMs?: number, bootstrapState?: BootstrapState) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const failing = (_request: unknown, _options: unknown, done: (e: Error) => void) => done(error);
    const connection = {
      clients: () => ({ entry: { GetAuthorizedEntries: failing }, bundle: { GetBundle: failing } }),
      reset: () => {},
    } as unknown as ServerConnection;
    const identity = {
      spiffeId: 'spiffe://example.org/spire/agent/join_token/abc',
      certificateChain: [],
      privateKeyPkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }),
      notBefore: Date.now(),
      notAfter: Date.now() + 600_000,
      renewAt: Date.now() + 300_000,
      authorityKeyIds: [],
      reattestable: true,
    } as AgentIdentity;
    let fatal: AgentFatalError | undefined;
    let failedSyncs = 0;
    let settle!: () => void;
    // Settled by whichever comes first: the agent stopping, or a second failed sync it lived through.
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const metrics = new AgentMetrics();
    const count = metrics.syncs.inc.bind(metrics.syncs);
    metrics.syncs.inc = ((labels: { result: string }) => {
      count(labels);
      if (labels.result === 'error' && ++failedSyncs === 2) settle();
    }) as typeof metrics.syncs.inc;
    const synchronizer = new Synchronizer({
      connection,
      cache: new SvidCache({
        trustDomain: 'example.org',
        x509Authorities: [],
        jwtAuthorities: [],
        refreshHint: 0,
        sequenceNumber: 0,
      }),
      identity,
      syncIntervalMs: 10,
      metrics,
      logger: silent,
      onIdentityChange: async () => {},
      bootstrapState: bootstrapState ?? (await BootstrapState.load(undefined)),
      ...(rebootstrapDelayMs === undefined ? {} : { rebootstrapDelayMs }),
      onFatal: (e) => {
        fatal = e;
        settle();
      },
    });
    synchronizer.start();
    await settled;
    await synchronizer.stop();
    return { fatal, failedSyncs };
  };
  it('is recognized from the TLS handshake error, and not from the server refusing the agent', () => {
    expect(isUnknownAuthorityError(UNTRUSTED_SERVER)).toBe(true);
    expect(
      isUnknownAuthorityError(
        status(
          grpc.status.UNAVAILABLE,
          'No connection established. Last error: Error: unable to get local issuer certificate',
        ),
      ),
    ).toBe(true);
    expect(
      isUnknownAuthorityError(status(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:8081')),
    ).toBe(false);
    expect(
      isUnknownAuthorityError(
        status(
          grpc.status.UNAUTHENTICATED,
          'caller is not an agent of this trust domain: certificate signed by unknown authority',
        ),
      ),
    ).toBe(false);
  });

  it('stops the agent (rebootstrap_mode "never": non-recoverable), where an unreachable server does not', async () => {
    const untrusted = await run(UNTRUSTED_SERVER);
    expect(untrusted.fatal?.message).toMatch(
      /^Synchronize failed, non-recoverable error: failed to sync with SPIRE Server/,
    );
    expect(untrusted.fatal?.forgetIdentity).toBe(false);
    expect(untrusted.failedSyncs).toBe(1);
    const unreachable = await run(status(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:8081'));
    expect(unreachable.fatal).toBeUndefined();
    expect(unreachable.failedSyncs).toBe(2);
  });

  it('with rebootstrap on, is waited out for rebootstrap_delay, then ends the agent to rebootstrap', async () => {
    const state = await BootstrapState.load(undefined);
    await state.succeeded();
    expect(state.use).toBe('rebootstrap');
    const started = Date.now();
    // A delay far beyond the 10 ms sync interval: the agent must live through failed syncs first.
    const waited = await run(UNTRUSTED_SERVER, 60_000, state);
    expect(waited.fatal).toBeUndefined();
    expect(waited.failedSyncs).toBe(2);
    const pendingSince = await state.startTime();
    expect(pendingSince).toBeGreaterThanOrEqual(started);
    // The same pending start time, now older than a 1 ms delay: the next untrusted answer ends it.
    const ended = await run(UNTRUSTED_SERVER, 1, state);
    expect(ended.fatal?.message).toBe('shutting down for rebootstrapping');
    expect(ended.fatal?.forgetIdentity).toBe(true);
    expect(ended.failedSyncs).toBe(1);
    expect(state.use).toBe('rebootstrap');
    expect(await state.startTime()).toBeGreaterThanOrEqual(pendingSince);
  });
});
