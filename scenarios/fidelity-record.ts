/**
 * What a fidelity run records: one suite run on each implementation of one topology, linked, so that
 * the side-by-side comparison can be rendered again from the results store. Types only; the
 * comparison itself (reports/fidelity-comparison.ts) is computed from the linked drills when rendered.
 * Every time is milliseconds since the Unix epoch.
 */
import type { ImplementationName as Implementation } from '../deployment/topology/topology.js';

/** One implementation's suite run. */
export interface FidelitySide {
  implementation: Implementation;
  /** The suite run id its drills are stored under (absent when the suite never started). */
  suiteRunId?: string;
  /** Its drill runs, in the suite's order. */
  runIds: string[];
  /** Why the suite did not complete, when it did not (its drills that ended are still listed). */
  error?: string;
  /** Set when an operator stopped it. */
  stopped?: { reason: string; notRun: number };
}

export interface FidelityRecord {
  fidelityId: string;
  suite: string;
  /** The topology file both sides ran, and its name and sync interval (the comparison's threshold). */
  topology: string;
  topologyName: string;
  syncIntervalSeconds: number;
  startedAt: number;
  finishedAt: number;
  /** Exactly two: the side compared (usually tspire) first, the reference (usually spire) second. */
  sides: [FidelitySide, FidelitySide];
}

/** Counted when the run ended and kept beside the record, for `fidelity list`. */
export interface FidelitySummary {
  /** Drills compared (pairs, or a drill that ran on one side only). */
  drills: number;
  differences: number;
  /** Drills that errored, on either side. */
  errored: number;
}
