import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../deployment/topology/topology.js';
import {
  classOf,
  drillPolicy,
  planWorkloads,
  predictIdentity,
  predictUnknownHeld,
  type DrillPolicy,
} from '../../scenarios/drill-plan.js';

const policy: DrillPolicy = { x509Ttl: 20, syncInterval: 1, backdate: 10 };
const slots = [
  { spiffeId: 'up-0', group: 'upstream', agent: 0 },
  { spiffeId: 'up-1', group: 'upstream', agent: 1 },
  { spiffeId: 'east-0', group: 'east', agent: 0 },
];

describe('drill plan', () => {
  it('takes issuance from the groups the fault reaches, and caps the downstreams it cuts off', () => {
    const planned = planWorkloads(
      slots,
      { kind: 'lb-down' },
      { effect: 'issuance', groups: ['upstream'] },
      { east: 5_000 },
    );
    expect(planned.map((w) => [w.spiffeId, w.effect, w.caNotAfter])).toEqual([
      ['up-0', 'issuance', undefined],
      ['up-1', 'issuance', undefined],
      ['east-0', 'none', 5_000],
    ]);
    const agent = planWorkloads(
      slots,
      { kind: 'agent-down', agent: 1 },
      { effect: 'issuance', groups: ['upstream'] },
    );
    expect(agent.map((w) => w.effect)).toEqual(['none', 'issuance', 'none']);
    const outage = planWorkloads(
      slots,
      { kind: 'upstream-outage', downstream: 'east' },
      { effect: 'none', groups: ['east'] },
      { east: 9 },
    );
    expect(outage.map((w) => w.caNotAfter)).toEqual([undefined, undefined, 9]);
    const oneOfTwo = planWorkloads(slots, { kind: 'servers-down' }, { effect: 'none', groups: ['upstream'] });
    expect(oneOfTwo.every((w) => w.effect === 'none' && w.caNotAfter === undefined)).toBe(true);
    const database = planWorkloads(
      slots,
      { kind: 'db-down' },
      { effect: 'issuance', groups: ['upstream', 'east'] },
    );
    expect(database.every((w) => w.effect === 'issuance')).toBe(true);
  });

  it('predicts loss at the held NotAfter when issuance stops for longer than it lives', () => {
    const w = { spiffeId: 'a', group: 'upstream', effect: 'issuance' as const };
    const p = predictIdentity(
      w,
      { notBefore: 90_000, notAfter: 120_000 },
      { start: 100_000, end: 145_000 },
      policy,
    );
    expect(p.loss).toBe('always');
    expect(p.lossAt).toBe(120_000);
    expect(p.recoveredBy!.earliest).toBe(145_000);
    expect(p.recoveredBy!.latest).toBeGreaterThan(145_000);
  });

  it('predicts no loss for a downstream whose intermediate outlives the outage, and loss when it does not', () => {
    const w = { spiffeId: 'a', group: 'east', effect: 'none' as const, caNotAfter: 400_000 };
    const held = { notBefore: 90_000, notAfter: 120_000 };
    expect(predictIdentity(w, held, { start: 100_000, end: 145_000 }, policy).loss).toBe('never');
    const expiring = { ...w, caNotAfter: 110_000 };
    expect(predictIdentity(expiring, held, { start: 100_000, end: 145_000 }, policy).loss).toBe('always');
  });

  it('in a dry run, says never for a short outage and always for a long one', () => {
    const w = { spiffeId: 'a', group: 'upstream', effect: 'issuance' as const };
    expect(predictUnknownHeld(w, { start: 0, end: 6_000 }, policy).loss).toBe('never');
    expect(predictUnknownHeld(w, { start: 0, end: 45_000 }, policy).loss).toBe('always');
    expect(predictUnknownHeld(w, { start: 0, end: 16_000 }, policy).loss).toBe('possibly');
  });

  it("takes the entry cache reload from the topology; a datastore outage's prediction ignores the node cache window", () => {
    const demo = { name: 'demo', trustDomain: 'td', ttls: { x509Svid: '20s' }, syncInterval: '1s' };
    const without = drillPolicy(parseTopology(demo));
    const withStaleness = drillPolicy(
      parseTopology({
        ...demo,
        spire: { server: { max_attested_node_info_staleness: '1h', cache_reload_interval: '3s' } },
      }),
    );
    expect(without).toEqual({
      x509Ttl: 20,
      syncInterval: 1,
      backdate: 10,
      entryCacheReload: 5,
      implementations: { upstream: 'tspire' },
    });
    expect(withStaleness.entryCacheReload).toBe(3);
    // db-down at medium on the demo: 23 s of a 30 s lifetime, longer than the staleness-free budget.
    const fault = { start: 100_000, end: 123_000 };
    const [workload] = planWorkloads(
      slots.slice(0, 1),
      { kind: 'db-down' },
      { effect: 'issuance', groups: ['upstream'] },
    );
    const held = { notBefore: 85_000, notAfter: 115_000 };
    const predicted = predictIdentity(workload!, held, fault, without);
    expect(predicted.loss).toBe('always');
    expect(predictIdentity(workload!, held, fault, withStaleness)).toEqual(predicted);
  });

  it('classifies outage lengths against the lifetime', () => {
    expect(classOf(7, policy)).toBe('short');
    expect(classOf(22, policy)).toBe('medium');
    expect(classOf(45, policy)).toBe('long');
    expect(classOf(14, policy)).toBe('between');
  });
});
