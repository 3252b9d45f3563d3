/**
 * A scenario file: one fault, how long it is held per outage class, what is expected of the
 * workloads' identities, and when to stop early. YAML, validated here; the drill workflow carries the
 * parsed `Scenario` (plain data) and never parses anything itself.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { durationSeconds as seconds } from '../deployment/topology/duration-schema.js';
import { faultSpecSchema } from '../deployment/faults/fault-spec.js';
import { issueLines, readYamlDocument } from '../deployment/topology/yaml-document.js';
import type { OutageClass } from './ttl-model.js';

export const OUTAGE_CLASSES: readonly OutageClass[] = ['short', 'medium', 'long'];

/** An outage length: a duration, or `{ ttl: F }`, F times the X509-SVID TTL. */
const outageLengthSchema = z.union([
  seconds.transform((s) => ({ seconds: s })),
  z.strictObject({ ttl: z.number().positive({ error: 'a fraction of the TTL must be positive' }) }),
]);
export type OutageLength = z.output<typeof outageLengthSchema>;

const groups = z
  .array(z.string(), { error: 'expected a list of groups ("upstream" or downstream names)' })
  .optional();

const phase = z.enum(['steady', 'fault', 'recovery'], { error: 'expected steady, fault or recovery' });

const expectationSchema = z.discriminatedUnion(
  'expect',
  [
    z.strictObject({
      expect: z.literal('identity-as-predicted'),
      /** Slack on every predicted instant; default one sync interval plus one second. */
      tolerance: seconds.optional(),
      groups,
    }),
    z.strictObject({ expect: z.literal('no-identity-loss'), groups }),
    z.strictObject({
      expect: z.literal('recovers'),
      /** After heal; default: the latest predicted recovery plus the tolerance. */
      within: seconds.optional(),
      groups,
    }),
    z.strictObject({
      expect: z.literal('handshake-success'),
      phase,
      min: z.number().min(0).max(1, { error: 'a success rate is between 0 and 1' }),
      groups,
    }),
    z.strictObject({
      expect: z.literal('new-authority'),
      /** Every workload holds an SVID from another authority this long after the injection. */
      within: seconds,
      groups,
    }),
    z.strictObject({ expect: z.literal('revoked-svid-refused') }),
    /** Every server's entry cache reloaded without failure while the fault held (from a replica). */
    z.strictObject({ expect: z.literal('entry-cache-reloads') }),
    z.strictObject({
      expect: z.literal('restore-drops-later-registrations'),
      /** After heal; default: an entry cache reload (5 s) plus twice the default tolerance. */
      within: seconds.optional(),
    }),
  ],
  {
    error:
      'unknown expectation: use identity-as-predicted, no-identity-loss, recovers, handshake-success, new-authority, revoked-svid-refused, entry-cache-reloads or restore-drops-later-registrations',
  },
);
export type Expectation = z.output<typeof expectationSchema>;

const stopConditionSchema = z.discriminatedUnion(
  'stop',
  [
    /** A workload the model says keeps its identity has lost it for longer than the tolerance. */
    z.strictObject({ stop: z.literal('unpredicted-identity-loss') }),
    /** More than `max` of the handshakes in the last 10 s failed. */
    z.strictObject({ stop: z.literal('handshake-failures'), max: z.number().min(0).max(1), groups }),
  ],
  { error: 'unknown stop condition: use unpredicted-identity-loss or handshake-failures' },
);
export type StopCondition = z.output<typeof stopConditionSchema>;

export const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, { error: 'lowercase letters, digits and dashes' }),
  description: z.string().min(1, { error: 'say what the drill rehearses' }),
  fault: faultSpecSchema,
  outage: z
    .strictObject({
      short: outageLengthSchema.optional(),
      medium: outageLengthSchema.optional(),
      long: outageLengthSchema.optional(),
    })
    .prefault({}),
  /** How long every workload must hold a valid SVID and shake hands before the fault, and after recovery. */
  steady: seconds.default(4),
  expectations: z.array(expectationSchema).min(1, { error: 'a drill without expectations has no verdict' }),
  stopConditions: z.array(stopConditionSchema).default([]),
});

export type Scenario = z.output<typeof scenarioSchema>;

export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    readonly issues: string[],
    what: 'scenario' | 'suite' = 'scenario',
  ) {
    super(`${source}: invalid ${what}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

export function parseScenario(document: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(document);
  if (!result.success) throw new ScenarioError(source, issueLines(result.error));
  return result.data;
}

export async function loadScenarioFile(path: string): Promise<Scenario> {
  return parseScenario(await readYamlDocument(path, (issues) => new ScenarioError(path, issues)), path);
}

/** The catalogue's scenario files, by name. */
export async function catalogue(dir: string): Promise<Map<string, string>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  return new Map(files.map((f) => [f.slice(0, -'.yaml'.length), join(dir, f)]));
}

/** A scenario by catalogue name or by path to a file. */
export async function loadScenario(nameOrPath: string, catalogueDir: string): Promise<Scenario> {
  if (nameOrPath.includes('/') || nameOrPath.endsWith('.yaml')) return loadScenarioFile(nameOrPath);
  const path = (await catalogue(catalogueDir)).get(nameOrPath);
  if (!path)
    throw new ScenarioError(nameOrPath, [
      `no scenario "${nameOrPath}" in ${catalogueDir}: known are ${[...(await catalogue(catalogueDir)).keys()].join(', ')}`,
    ]);
  const scenario = await loadScenarioFile(path);
  if (scenario.name !== nameOrPath)
    throw new ScenarioError(path, [`name: "${scenario.name}" differs from the file name`]);
  return scenario;
}
