import { describe, expect, it } from 'vitest';
import { Backoff } from '../../identity-core/agent/backoff.js';
import { renewalTime } from '../../identity-core/agent/renewal-policy.js';
import { BACKDATE_SECONDS } from '../../identity-core/pki/x509-ca.js';
import { SERVER_DEFAULTS } from '../../identity-core/server/server-config.js';
import { parseDuration } from '../../identity-core/config/duration.js';
import { IMPLEMENTATION_TIMING, timingOf } from '../../scenarios/implementation-timing.js';

// The bundled SPIRE's record must describe the bundled SPIRE: its agent's backoff and renewal, its
// CA's backdating and its server's defaults are read here, not restated.
describe("the bundled SPIRE's timing record", () => {
  const timing = IMPLEMENTATION_TIMING.tspire;

  it("matches the agent's sync backoff: ×factor per failure, ±jitter, capped", () => {
    const intervalMs = 5_000;
    const highest = new Backoff(intervalMs, () => 1 - Number.EPSILON);
    const lowest = new Backoff(intervalMs, () => 0);
    let nominal = intervalMs;
    const capMs = 1000 * Math.min(timing.sync.maxSeconds, timing.sync.maxIntervals * 5);
    for (let n = 0; n < 20; n++) {
      expect(highest.next()).toBeCloseTo(nominal * (1 + timing.sync.jitter), -1);
      expect(lowest.next()).toBeCloseTo(nominal * (1 - timing.sync.jitter), -1);
      nominal = Math.min(nominal * timing.sync.factor, capMs);
    }
    expect(nominal).toBe(capMs);
  });

  it('matches the renewal window and the backdating', () => {
    const [notBefore, notAfter] = [0, 1000];
    expect(notAfter - renewalTime(notBefore, notAfter, () => 0)).toBeCloseTo(
      timing.renewRemaining.least * 1000,
    );
    expect(notAfter - renewalTime(notBefore, notAfter, () => 1)).toBeCloseTo(
      timing.renewRemaining.most * 1000,
    );
    expect(BACKDATE_SECONDS).toBe(timing.backdate);
  });

  it("matches the server's rotation check and entry cache reload", () => {
    expect(parseDuration(SERVER_DEFAULTS.caRotationCheckInterval)).toBe(timing.caRotationCheck);
    expect(parseDuration(SERVER_DEFAULTS.entryCacheReloadInterval)).toBe(timing.entryCacheReload);
  });

  it('stands in for plans that recorded no implementation', () => {
    expect(timingOf(undefined)).toBe(timing);
    expect(timingOf('spire')).toBe(IMPLEMENTATION_TIMING.spire);
  });
});
