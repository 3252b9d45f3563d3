/**
 * What every fault kind implements: where it lands (or why this topology cannot host it), doing it
 * idempotently under its lease, seeing from outside that it took, undoing it, and seeing that the
 * deployment is whole again. One module per kind implements it; faults/registry.ts lists them.
 */
import type { z } from 'zod';
import type { Deployment } from '../deployment.js';
import { portAcceptsConnections } from '../host/free-port.js';

/** The topology cannot host this fault; the message says why. */
export class FaultRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FaultRefused';
  }
}

/**
 * What the TTL model must assume while the fault holds, for the workloads of the fault's `groups`:
 * 'issuance' when they can get no new SVID; 'none' when issuance goes on (a downstream cut off from
 * its upstream signs on with its intermediate, whose NotAfter then caps its SVIDs); 'authority' when
 * issuance goes on from a new authority.
 */
export type FaultEffect = 'issuance' | 'none' | 'authority';

export interface FaultResolution {
  /** What the fault stops or changes, in words an operator recognizes. */
  targets: string[];
  effect: FaultEffect;
  /**
   * The server groups whose workloads `effect` applies to: the fault's group, or every group whose
   * database lives in a stopped PostgreSQL. For agent-down, only that agent's workloads.
   */
  groups: string[];
}

/** A drill run's hold on its fault while injecting: what its lease recorded of earlier attempts. */
export interface InjectionRun {
  runId: string;
  /** ca-compromise: the authorities an earlier attempt declared compromised. */
  authorities?: string[];
  /** Records the authorities declared compromised in the lease, before anything changes. */
  recordAuthorities(authorities: string[]): void;
}

export interface HealingRun {
  runId: string;
  /** What the lease recorded (absent when no lease is left). */
  authorities?: string[];
  /** Called once the fault's cause is gone: issuance resumes from here, often before healing ends. */
  restored(): void;
}

/** What a look from outside found: what is as expected, and what is not. */
export class Observations {
  readonly problems: string[] = [];
  readonly seen: string[] = [];

  note(ok: boolean, detail: string): void {
    (ok ? this.seen : this.problems).push(detail);
  }

  async portDown(what: string, port: number): Promise<void> {
    if (await portAcceptsConnections(port))
      this.problems.push(`${what} still accepts connections on 127.0.0.1:${port}`);
    else this.seen.push(`${what} refuses connections on 127.0.0.1:${port}`);
  }

  /** Everything as expected (detailed by what was seen, else `fallback`), or the problems. */
  outcome(fallback = ''): { ok: boolean; detail: string } {
    return this.problems.length > 0
      ? { ok: false, detail: this.problems.join('; ') }
      : { ok: true, detail: this.seen.join('; ') || fallback };
  }

  processGone(what: string, process: { isRunning(): boolean; pid: number } | undefined): void {
    if (process?.isRunning()) this.problems.push(`${what} still runs (pid ${process.pid})`);
  }
}

/** One fault kind; `spec` is its schema in a scenario file, with `kind` as its literal. */
export interface Fault<Schema extends z.ZodType<{ kind: string }>> {
  kind: z.output<Schema>['kind'];
  spec: Schema;
  /** The fault in a few words, for logs and records. */
  describe(spec: z.output<Schema>): string;
  /** Where the fault lands and what it does to issuance; throws FaultRefused for what the topology cannot host. */
  resolve(deployment: Deployment, spec: z.output<Schema>): FaultResolution;
  /** Does it, idempotently: a retry finishes what an earlier attempt began. Returns what it did. */
  inject(deployment: Deployment, spec: z.output<Schema>, run: InjectionRun): Promise<string>;
  /** Whether its effect is there now, seen from outside: ports, processes, sockets, the bundle. */
  confirm(deployment: Deployment, spec: z.output<Schema>, seen: Observations): Promise<void>;
  /** Undoes it, idempotently: safe after a partial injection. Returns what it did. */
  heal(deployment: Deployment, spec: z.output<Schema>, run: HealingRun): Promise<string>;
  /** Whether the deployment is whole again where the fault was. */
  verify(deployment: Deployment, spec: z.output<Schema>, seen: Observations): Promise<void>;
}

/** Types a kind's module: the methods get its spec's type from its schema. */
export const defineFault = <Schema extends z.ZodType<{ kind: string }>>(
  fault: Fault<Schema>,
): Fault<Schema> => fault;
