import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { expect } from 'vitest';

/** What the checks read of a drill: the CLI's `--json` output and report.json both carry it. */
export interface CheckedDrill {
  scenario: string;
  outage: string;
  verdict: string;
  reason: string;
  workloads: {
    spiffeId: string;
    group: string;
    predicted: { loss: string };
    observed: { gaps: { start: number; end: number | null }[] };
  }[];
  expectations: { name: string; met: boolean; evidence: string[] }[];
  findings: string[];
}

export const CATALOGUE = [
  'agent-down',
  'ca-compromise',
  'db-down',
  'db-primary-down',
  'db-restore',
  'lb-down',
  'server-loss',
  'servers-down',
  'upstream-outage',
];

/**
 * What a suite run over the whole catalogue must show, whatever its outage classes: every scenario at
 * each class once, every verdict passed, and the evidence that the scenarios measured what they claim
 * (lb-down short without loss, the replica serving db-primary-down's reloads, db-restore's report of
 * the registration the backup lacked).
 */
export function checkCatalogueRun(drills: CheckedDrill[], outages: string[]): void {
  expect([...new Set(drills.map((d) => d.scenario))].sort()).toEqual([...CATALOGUE].sort());
  expect(drills.map((d) => `${d.scenario} ${d.outage}`).sort()).toEqual(
    CATALOGUE.flatMap((s) => outages.map((o) => `${s} ${o}`)).sort(),
  );
  for (const d of drills) expect(d.verdict, `${d.scenario} ${d.outage}: ${d.reason}`).toBe('passed');

  const lbShort = drills.find((d) => d.scenario === 'lb-down' && d.outage === 'short')!;
  expect(lbShort.workloads.every((w) => w.observed.gaps.length === 0)).toBe(true);

  for (const d of drills.filter((d) => d.scenario === 'db-primary-down')) {
    const reloads = d.expectations.find((e) => e.name.startsWith('every server reloads its entry cache'))!;
    expect(reloads.met, reloads.evidence.join('\n')).toBe(true);
    expect(reloads.evidence).toContain('upstream server 1: 0 failed reload(s) during the fault');
  }
  for (const d of drills.filter((d) => d.scenario === 'db-restore')) {
    expect(d.findings.join('\n')).toMatch(
      /upstream: 1 registration entry registered after the backup: spiffe:\/\/demo\.spire-drill\.test\/upstream\/agent-0\/workload-0\/after-backup/,
    );
    const dropped = d.expectations.find((e) => e.name.startsWith('identities registered after the backup'))!;
    expect(dropped.evidence.join('\n')).toMatch(/gone \+\d+\.\d s after the restore/);
  }
}

/** lb-down long: the upstream's workloads lose their identity, as predicted, and recover; no downstream one does. */
export function checkLbDownLongLoss(drills: CheckedDrill[]): void {
  const lbLong = drills.find((d) => d.scenario === 'lb-down' && d.outage === 'long')!;
  const predictedLoss = lbLong.workloads.filter((w) => w.predicted.loss === 'always');
  expect(predictedLoss.length).toBeGreaterThan(0);
  for (const w of predictedLoss) {
    expect(w.observed.gaps.length, w.spiffeId).toBeGreaterThan(0);
    // An open gap (no recovery) has an infinite end, which JSON writes as null.
    expect(Number.isFinite(w.observed.gaps.at(-1)!.end), w.spiffeId).toBe(true);
  }
  expect(
    lbLong.workloads.filter((w) => w.group !== 'upstream').every((w) => w.observed.gaps.length === 0),
  ).toBe(true);
}

/** The JUnit file holds a testcase per drill, none failed or errored. */
export function checkJunit(file: string, drills: number): void {
  const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(
    readFileSync(file, 'utf8'),
  ) as { testsuites?: { testsuite: Record<string, unknown> }; testsuite?: Record<string, unknown> };
  const suite = (parsed.testsuites?.testsuite ?? parsed.testsuite)!;
  expect(Number(suite.tests)).toBe(drills);
  expect(Number(suite.failures)).toBe(0);
  expect(Number(suite.errors)).toBe(0);
}
