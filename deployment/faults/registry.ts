/**
 * Every fault kind the catalogue knows, one module each. Adding a kind: its module, one line here,
 * and its scenario in scenarios/catalogue/.
 */
import type { z } from 'zod';
import { agentDown } from './agent-down.js';
import { caCompromise } from './ca-compromise.js';
import { dbDown } from './db-down.js';
import { dbPrimaryDown } from './db-primary-down.js';
import { dbRestore } from './db-restore.js';
import type { Fault } from './fault.js';
import { lbDown } from './lb-down.js';
import { serverLoss } from './server-loss.js';
import { serversDown } from './servers-down.js';
import { upstreamOutage } from './upstream-outage.js';

/** In the order error messages list them. */
export const faultKinds = [
  dbDown,
  dbPrimaryDown,
  dbRestore,
  serversDown,
  lbDown,
  serverLoss,
  agentDown,
  upstreamOutage,
  caCompromise,
] as const;

type AnyFault = Fault<z.ZodType<{ kind: string }>>;

/** The module of the spec's kind, taking any spec (its own kind's, as the lookup ensures). */
export function faultOf(spec: { kind: string }): AnyFault {
  const fault = faultKinds.find((f) => f.kind === spec.kind);
  if (!fault) throw new Error(`unknown fault kind "${spec.kind}"`);
  return fault as unknown as AnyFault;
}
