import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { bundleFromProto, entryFromProto } from '../proto/convert.js';
import type { RegistrationEntry } from '../datastore/records.js';
import type { Bundle__Output } from '../proto/gen/spire/api/types/Bundle.js';
import type { GetAuthorizedEntriesResponse__Output } from '../proto/gen/spire/api/server/entry/v1/GetAuthorizedEntriesResponse.js';
import type { RenewAgentResponse__Output } from '../proto/gen/spire/api/server/agent/v1/RenewAgentResponse.js';
import type { BatchNewX509SVIDResponse__Output } from '../proto/gen/spire/api/server/svid/v1/BatchNewX509SVIDResponse.js';
import type { AgentMetrics } from './agent-metrics.js';
import { Backoff } from './backoff.js';
import { isUnknownAuthorityError } from './bootstrap-policy.js';
import type { BootstrapState } from './bootstrap-state.js';
import type { Attested } from './node-attestation.js';
import { authorityKeyIds } from './chain-authorities.js';
import { renewalTime } from './renewal-policy.js';
import { call, type ServerConnection } from '../transport/server-connection.js';
import { taintedAuthorityIds, type CachedX509Svid, type SvidCache } from './svid-cache.js';
import { newKeyAndCsr } from './workload-key.js';

/** The agent's own identity towards the server. */
export interface AgentIdentity {
  spiffeId: string;
  certificateChain: Buffer[];
  privateKeyPkcs8: Buffer;
  notBefore: number;
  notAfter: number;
  renewAt: number;
  authorityKeyIds: string[];
  /** Whether the server lets this agent attest again (then it renews by attesting, as SPIRE's does). */
  reattestable: boolean;
}

export function agentIdentityFrom(
  spiffeId: string,
  certificateChain: Buffer[],
  privateKeyPkcs8: Buffer,
  reattestable = false,
): AgentIdentity {
  const leaf = new X509Certificate(certificateChain[0]!);
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = new Date(leaf.validTo).getTime();
  return {
    spiffeId,
    certificateChain,
    privateKeyPkcs8,
    notBefore,
    notAfter,
    renewAt: renewalTime(notBefore, notAfter),
    authorityKeyIds: authorityKeyIds(certificateChain),
    reattestable,
  };
}

export function identityPem(identity: AgentIdentity): { certificateChain: Buffer[]; privateKeyPem: string } {
  const key = createPrivateKey({ key: identity.privateKeyPkcs8, format: 'der', type: 'pkcs8' });
  return {
    certificateChain: identity.certificateChain,
    privateKeyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Why the agent must stop: SPIRE's agent exits in these cases rather than serve on. */
export class AgentFatalError extends Error {
  constructor(
    message: string,
    readonly forgetIdentity: boolean,
  ) {
    super(message);
  }
}

export interface SynchronizerDeps {
  connection: ServerConnection;
  cache: SvidCache;
  identity: AgentIdentity;
  syncIntervalMs: number;
  metrics: AgentMetrics;
  logger: Logger;
  onIdentityChange(identity: AgentIdentity): Promise<void>;
  onFatal(error: AgentFatalError): void;
  /** Attests again with the node attestor: given when that attestor can (x509pop). */
  reattest?: () => Promise<Attested>;
  /** Pending-rebootstrap bookkeeping, kept across restarts. */
  bootstrapState: BootstrapState;
  /** rebootstrap_delay for rebootstrap_mode auto or always; absent with never. */
  rebootstrapDelayMs?: number;
}

/** Upper bound on CSRs per BatchNewX509SVID, the server's own per-call limit. */
const CSR_BATCH = 500;
const DEFAULT_SYNC_INTERVAL_MS = 5000;

/**
 * The agent's sync loop, as SPIRE's: every sync interval fetch the authorized entries and the bundle,
 * renew the agent SVID and workload SVIDs that are due (or chain to a tainted authority), spaced by
 * SPIRE's backoff (see backoff.ts). Nothing is dropped from the cache when the server is unreachable.
 */
export class Synchronizer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  private identity: AgentIdentity;
  private running: Promise<void> | undefined;
  lastSuccess = 0;
  consecutiveFailures = 0;

  constructor(private readonly deps: SynchronizerDeps) {
    this.identity = deps.identity;
    this.backoff = new Backoff(deps.syncIntervalMs);
  }

  get agentIdentity(): AgentIdentity {
    return this.identity;
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick();
    }, delayMs);
  }

  private async tick(): Promise<void> {
    try {
      await this.syncOnce();
      this.deps.metrics.syncs.inc({ result: 'ok' });
      this.lastSuccess = Date.now();
      this.consecutiveFailures = 0;
      await this.deps.bootstrapState.succeededIfPending();
      this.backoff.reset();
      const delay = this.backoff.next();
      // SPIRE syncs at least every 5 s while it holds no workload SVID.
      this.schedule(this.deps.cache.svidCount === 0 ? Math.min(delay, DEFAULT_SYNC_INTERVAL_MS) : delay);
    } catch (error) {
      this.deps.metrics.syncs.inc({ result: 'error' });
      this.consecutiveFailures++;
      this.deps.connection.reset();
      try {
        if (await this.recovered(error)) return;
      } catch (fatal) {
        this.stopped = true;
        this.deps.onFatal(fatal as AgentFatalError);
        return;
      }
      const fatal = this.fatalFrom(error);
      if (fatal) {
        this.stopped = true;
        this.deps.onFatal(fatal);
        return;
      }
      const delay = this.backoff.next();
      this.deps.logger.error({ err: (error as Error).message, retry_in_ms: delay }, 'Synchronize failed');
      this.schedule(delay);
    }
  }

  /**
   * What SPIRE's agent does beyond backing off for a re-attestable agent the server forgot (it
   * attests again) and, with rebootstrap on, for a server it cannot verify (it waits out
   * rebootstrap_delay, then exits to rebootstrap). True when the next sync is scheduled; throws the
   * AgentFatalError that ends the agent.
   */
  private async recovered(error: unknown): Promise<boolean> {
    const { logger, bootstrapState, rebootstrapDelayMs } = this.deps;
    const e = error as Partial<grpc.ServiceError>;
    if (
      this.deps.reattest &&
      e.code === grpc.status.PERMISSION_DENIED &&
      /is not attested/.test(e.details ?? '')
    ) {
      logger.warn({ err: (error as Error).message }, 'Agent needs to re-attest; will attempt to re-attest');
      try {
        await this.reattest();
      } catch (reattestError) {
        logger.error(
          { err: (reattestError as Error).message },
          'Agent failed re-attestation; removing SVID and shutting down',
        );
        throw new AgentFatalError('Agent failed re-attestation; removing SVID and shutting down', true);
      }
      this.schedule(0);
      return true;
    }
    if (rebootstrapDelayMs === undefined || !isUnknownAuthorityError(error)) return false;
    const elapsed = Date.now() - (await bootstrapState.startTime());
    if (elapsed < rebootstrapDelayMs) {
      logger.info(
        {
          time_left: `${((rebootstrapDelayMs - elapsed) / 1000).toFixed(3)}s`,
          err: (error as Error).message,
        },
        'Trust Bandle and Server dont agree.... Ignoring for now.',
      );
      this.backoff.reset();
      this.schedule(Math.min(this.backoff.next(), DEFAULT_SYNC_INTERVAL_MS));
      return true;
    }
    logger.warn('Trust Bandle and Server dont agree.... rebootstrapping');
    await bootstrapState.forceRebootstrap();
    throw new AgentFatalError('shutting down for rebootstrapping', true);
  }

  /** A new agent SVID by attesting again, as SPIRE's agent renews a re-attestable SVID. */
  private async reattest(): Promise<void> {
    const attested = await this.deps.reattest!();
    this.identity = agentIdentityFrom(
      attested.spiffeId,
      attested.certificateChain,
      attested.privateKeyPkcs8,
      attested.reattestable,
    );
    this.deps.metrics.agentSvidRotations.inc();
    this.deps.logger.info({ spiffe_id: this.identity.spiffeId }, 'Successfully reattested node');
    await this.deps.onIdentityChange(this.identity);
  }

  private fatalFrom(error: unknown): AgentFatalError | undefined {
    const e = error as Partial<grpc.ServiceError>;
    if (e.code === grpc.status.PERMISSION_DENIED && /is banned/.test(e.details ?? '')) {
      return new AgentFatalError('Agent is banned: removing SVID and shutting down', true);
    }
    if (e.code === grpc.status.PERMISSION_DENIED && /is not attested/.test(e.details ?? '')) {
      return new AgentFatalError(
        'Agent was evicted and join token agents cannot re-attest: removing SVID and shutting down',
        true,
      );
    }
    // With rebootstrap_mode "never" a server whose root the agent does not trust cannot become
    // trusted again: SPIRE's agent exits.
    if (isUnknownAuthorityError(error)) {
      return new AgentFatalError(
        `Synchronize failed, non-recoverable error: failed to sync with SPIRE Server: ${(error as Error).message}`,
        false,
      );
    }
    if (Date.now() >= this.identity.notAfter) {
      return new AgentFatalError('Agent SVID has expired and could not be renewed: shutting down', false);
    }
    return undefined;
  }

  private clients() {
    const roots = this.deps.cache.bundle.x509Authorities.map((a) => a.der);
    return this.deps.connection.clients(roots, identityPem(this.identity));
  }

  /** One round of synchronization; throws on the first failure so the loop backs off. */
  async syncOnce(): Promise<void> {
    const { cache, metrics, logger } = this.deps;
    // SPIRE's order: the authorized entries, then the bundle, and only with both does anything renew.
    // So an outage that fails GetBundle (the datastore's) fails the sync even when the entries came.
    const entryClient = this.clients().entry;
    const response = await call<GetAuthorizedEntriesResponse__Output>((o, done) =>
      entryClient.GetAuthorizedEntries({}, o, done),
    );
    const bundleClient = this.clients().bundle;
    const bundle = bundleFromProto(
      await call<Bundle__Output>((o, done) => bundleClient.GetBundle({}, o, done)),
    );
    cache.setEntries(response.entries.map(entryFromProto));
    if (cache.setBundle(bundle)) logger.info({ sequence_number: bundle.sequenceNumber }, 'Bundle updated');

    const tainted = new Set(taintedAuthorityIds(cache.bundle));
    if (Date.now() >= this.identity.renewAt || this.identity.authorityKeyIds.some((id) => tainted.has(id))) {
      await this.rotateAgentSvid();
    }

    const now = Date.now();
    const due = cache.entriesNeedingSvid(now);
    metrics.expiringSvids.set(due.length);
    const taintedDue = due.filter((e) => cache.svidFor(e.id)?.authorityKeyIds.some((id) => tainted.has(id)));
    if (taintedDue.length > 0) {
      metrics.taintedWorkloadSvids.inc(taintedDue.length);
      logger.info({ count: taintedDue.length }, 'Tainted X.509 SVIDs found; re-issuing them');
    }
    for (let i = 0; i < due.length; i += CSR_BATCH) await this.issue(due.slice(i, i + CSR_BATCH));
    metrics.cachedSvids.set(cache.svidCount);
  }

  private async rotateAgentSvid(): Promise<void> {
    if (this.identity.reattestable && this.deps.reattest) {
      await this.reattest();
      return;
    }
    const { privateKeyPkcs8, csr } = await newKeyAndCsr();
    const svc = this.clients().agent;
    const response = await call<RenewAgentResponse__Output>((o, done) =>
      svc.RenewAgent({ params: { csr } }, o, done),
    );
    if (!response.svid || response.svid.certChain.length === 0)
      throw new Error('server returned no agent SVID');
    this.identity = agentIdentityFrom(
      this.identity.spiffeId,
      response.svid.certChain.map((c) => Buffer.from(c)),
      privateKeyPkcs8,
      this.identity.reattestable,
    );
    this.deps.metrics.agentSvidRotations.inc();
    this.deps.logger.info(
      { spiffe_id: this.identity.spiffeId, expiration: new Date(this.identity.notAfter).toISOString() },
      'Renewing agent SVID',
    );
    await this.deps.onIdentityChange(this.identity);
  }

  private async issue(entries: RegistrationEntry[]): Promise<void> {
    const { cache, logger } = this.deps;
    const keys = await Promise.all(entries.map(() => newKeyAndCsr()));
    const svc = this.clients().svid;
    const params = entries.map((entry, i) => ({ entryId: entry.id, csr: keys[i]!.csr }));
    const response = await call<BatchNewX509SVIDResponse__Output>((o, done) =>
      svc.BatchNewX509SVID({ params }, o, done),
    );
    const issued: CachedX509Svid[] = [];
    response.results.forEach((result, i) => {
      const entry = entries[i]!;
      if (!result.svid || result.status?.code !== grpc.status.OK) {
        logger.warn(
          { entry_id: entry.id, spiffe_id: entry.spiffeId, status: result.status?.message },
          'Failed to create X509-SVID',
        );
        return;
      }
      const chain = result.svid.certChain.map((c) => Buffer.from(c));
      const leaf = new X509Certificate(chain[0]!);
      const notBefore = new Date(leaf.validFrom).getTime();
      const notAfter = new Date(leaf.validTo).getTime();
      issued.push({
        entryId: entry.id,
        spiffeId: entry.spiffeId,
        certificateChain: chain,
        privateKeyPkcs8: keys[i]!.privateKeyPkcs8,
        serial: leaf.serialNumber,
        notBefore,
        notAfter,
        renewAt: renewalTime(notBefore, notAfter),
        authorityKeyIds: authorityKeyIds(chain),
        entryRevision: entry.revisionNumber,
      });
      logger.debug(
        { entry_id: entry.id, spiffe_id: entry.spiffeId, expiration: leaf.validTo },
        'Creating X509-SVID',
      );
    });
    cache.putSvids(issued);
  }
}
