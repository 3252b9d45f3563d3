import type { Logger } from 'pino';
import type { AuthorityKind } from '../../pki/ca-journal.js';
import { shouldActivate, shouldPrepare } from '../../pki/ca-rotation-policy.js';
import type { ServerMetrics } from '../server-metrics.js';
import type { JournalStore } from './journal-store.js';

export interface CaRotatorOptions {
  store: JournalStore;
  /** The journal changes the rotator asks for, done (persisted, published, logged) by the CA manager. */
  prepare(kind: AuthorityKind): Promise<unknown>;
  activate(kind: AuthorityKind, authorityId: string): Promise<unknown>;
  checkIntervalMs: number;
  metrics: ServerMetrics;
  logger: Logger;
}

/**
 * Automatic rotation, as SPIRE's CA rotator: every check, for the X.509 CA and for the JWT key, the
 * next authority is prepared once the current one passes its preparation threshold and activated once
 * it passes its activation threshold.
 */
export class CaRotator {
  private timer: NodeJS.Timeout | undefined;
  /** Failed preparations and activations since start, never reset (SPIRE's health check reads it). */
  private failures = 0;

  constructor(private readonly options: CaRotatorOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  failedRotations(): number {
    return this.failures;
  }

  private async check(): Promise<void> {
    const { store } = this.options;
    const now = Math.floor(Date.now() / 1000);
    for (const kind of ['x509', 'jwt'] as const) {
      const current = store.journal.current(kind);
      const next = store.journal.next(kind);
      if (!current) continue;
      try {
        let prepared = next?.status === 'PREPARED' ? next : undefined;
        // A tainted old authority blocks the slot until it is revoked; a revoked one is kept only to be shown.
        if (!prepared && (!next?.tainted || next.revoked) && shouldPrepare(current, now)) {
          await this.options.prepare(kind);
          prepared = store.journal.next(kind);
        }
        // Activation follows in the same check when it is already due, e.g. a downstream whose
        // upstream was away past its activation threshold.
        if (prepared && shouldActivate(current, now)) await this.options.activate(kind, prepared.authorityId);
      } catch (error) {
        this.failures++;
        this.options.logger.error(
          { err: (error as Error).message },
          `Unable to rotate ${kind === 'x509' ? 'X509 CA' : 'JWT key'}`,
        );
      }
    }
    const current = store.journal.current('x509');
    if (current) this.options.metrics.activeX509CaTtl(current.notAfter - now);
  }
}
