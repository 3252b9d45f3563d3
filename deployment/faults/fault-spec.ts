/**
 * A fault a drill injects into a deployment: what breaks, and where. Validated with zod, as the union
 * of the kinds' own schemas (faults/registry.ts); the type comes from the schema alone, so a scenario
 * file, the drill workflow and the kinds' modules agree.
 */
import { z } from 'zod';
import { faultKinds } from './registry.js';

/** The kinds' schemas as a tuple, which the discriminated union needs to type each kind. */
type SchemasOf<T extends readonly unknown[]> = {
  -readonly [I in keyof T]: T[I] extends { spec: infer S } ? S : never;
};

const kindNames = faultKinds.map((f) => f.kind);

export const faultSpecSchema = z.discriminatedUnion(
  'kind',
  faultKinds.map((f) => f.spec) as unknown as SchemasOf<typeof faultKinds>,
  {
    error: `unknown fault kind: use ${kindNames.slice(0, -1).join(', ')} or ${kindNames.at(-1)}`,
  },
);

export type FaultSpec = z.output<typeof faultSpecSchema>;
export type FaultKind = FaultSpec['kind'];
