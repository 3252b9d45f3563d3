import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Datastore } from '../../datastore/datastore.js';
import { CaJournalError, type AuthorityKind, type JournalEntry } from '../../pki/ca-journal.js';
import type { KeyManager } from '../../pki/key-manager.js';
import type { MintedJwtSvid } from '../../spiffe/jwt-svid.js';
import {
  withJwtAuthority,
  withJwtAuthorityTainted,
  withX509Authority,
  withX509AuthorityTainted,
  withoutJwtAuthority,
  withoutX509Authority,
  type JwtAuthority,
  type TrustBundle,
} from '../../spiffe/trust-bundle.js';
import { RpcError } from '../../transport/rpc-error.js';
import type { TlsIdentity } from '../../transport/peer-tagged-server.js';
import type { ServerMetrics } from '../server-metrics.js';
import { JournalStore } from './journal-store.js';
import { newJwtAuthority, newSelfSignedX509Authority, type NewAuthority } from './new-authority.js';
import { CaRotator } from './rotator.js';
import { ServerSvidRotator } from './server-svid-rotator.js';
import { CaSigner, type SignedX509Svid, type X509SvidRequest } from './signer.js';
import { TrustDomainBundle } from './trust-domain-bundle.js';
import type { UpstreamClient } from './upstream-client.js';
import { UpstreamSync } from './upstream-sync.js';

export interface AuthoritySummary {
  authorityId: string;
  expiresAt: number;
  upstreamAuthorityId?: string;
}

export interface CaManagerOptions {
  trustDomain: string;
  dataDir: string;
  keyManager: KeyManager;
  datastore: Datastore;
  /** Seconds: lifetime of each X.509 authority and JWT key. */
  caTtl: number;
  serverSvidTtl: number;
  rotationCheckIntervalMs: number;
  metrics: ServerMetrics;
  logger: Logger;
  /** A downstream (nested) server's upstream: where its intermediate CAs come from. */
  upstream?: UpstreamClient;
  /** How often a downstream polls its upstream's bundle (SPIRE: 5 s). */
  upstreamBundlePollMs?: number;
}

/** SPIRE's CA health check fails once this many rotations have failed since the server started. */
const FAILED_ROTATION_THRESHOLD = 10;

/** The key of the test SVID the health check signs: any key will do, so one per process. */
const healthCheckKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
  format: 'der',
  type: 'spki',
});

const summary = (entry: JournalEntry | undefined): AuthoritySummary | undefined =>
  entry
    ? {
        authorityId: entry.authorityId,
        expiresAt: entry.notAfter,
        ...(entry.upstreamAuthorityId ? { upstreamAuthorityId: entry.upstreamAuthorityId } : {}),
      }
    : undefined;

function journalErrorToRpc(error: unknown): unknown {
  if (!(error instanceof CaJournalError)) return error;
  const code = {
    FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
    INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
    NOT_FOUND: grpc.status.NOT_FOUND,
  }[error.code];
  return new RpcError(code, error.message);
}

/** Taint and revoke differ only in their journal step, their wording, and what the bundle does. */
const DISTRUST = {
  taint: { done: 'tainted', bundle: { x509: withX509AuthorityTainted, jwt: withJwtAuthorityTainted } },
  revoke: { done: 'revoked', bundle: { x509: withoutX509Authority, jwt: withoutJwtAuthority } },
} as const;

/**
 * The server's authorities, as SPIRE's CA manager: the journal (journal-store.ts), the bundle it keeps
 * in step (trust-domain-bundle.ts), signing (signer.ts), the forced rotation steps of the local
 * authority API, automatic rotation (rotator.ts), the server's own SVID (server-svid-rotator.ts) and,
 * on a downstream server, its upstream (upstream-sync.ts). Journal changes are serialized.
 */
export class CaManager {
  private readonly store: JournalStore;
  private readonly trustBundle: TrustDomainBundle;
  private readonly signer: CaSigner;
  private readonly serverSvid: ServerSvidRotator;
  private readonly rotator: CaRotator;
  private readonly upstream: UpstreamSync | undefined;

  constructor(private readonly options: CaManagerOptions) {
    const { datastore, dataDir, keyManager, logger, metrics } = options;
    this.store = new JournalStore({ datastore, dataDir, keyManager, logger });
    this.trustBundle = new TrustDomainBundle(options.trustDomain, datastore.bundles);
    this.signer = new CaSigner(this.store, keyManager, options.upstream !== undefined);
    this.serverSvid = new ServerSvidRotator({
      signer: this.signer,
      trustDomain: options.trustDomain,
      ttlSeconds: options.serverSvidTtl,
      checkIntervalMs: options.rotationCheckIntervalMs,
      logger,
    });
    this.rotator = new CaRotator({
      store: this.store,
      prepare: (kind) => this.prepare(kind),
      activate: (kind, authorityId) => this.activate(kind, authorityId),
      checkIntervalMs: options.rotationCheckIntervalMs,
      metrics,
      logger,
    });
    this.upstream = options.upstream
      ? new UpstreamSync({
          client: options.upstream,
          store: this.store,
          bundle: this.trustBundle,
          signer: this.signer,
          serverSvid: this.serverSvid,
          keyManager,
          caTtl: options.caTtl,
          dataDir,
          ...(options.upstreamBundlePollMs !== undefined ? { pollMs: options.upstreamBundlePollMs } : {}),
          metrics,
          logger,
        })
      : undefined;
  }

  async start(): Promise<void> {
    const { store } = this;
    await store.serialize(async () => {
      await store.load();
      await this.upstream?.start();
      for (const kind of ['x509', 'jwt'] as const) {
        if (!store.journal.current(kind)) {
          const created = this.upstream
            ? await this.upstream.untilAnswered(kind, () => this.newAuthority(kind))
            : await this.newAuthority(kind);
          store.journal.bootstrap(kind, created);
          this.options.logger.info(
            {
              authority_id: created.authorityId,
              expiration: new Date(created.notAfter * 1000).toISOString(),
            },
            kind === 'x509' ? 'X509 CA activated' : 'JWT key activated',
          );
        }
      }
      await this.publish();
      await store.save();
      await this.signer.load();
    });
    this.serverSvid.start();
    this.rotator.start();
    await this.upstream?.startPolling();
  }

  stop(): void {
    this.rotator.stop();
    this.serverSvid.stop();
    this.upstream?.stop();
  }

  /**
   * SPIRE's CA health checks (for the HTTP ready and live paths): a test X509-SVID can be signed, so
   * not once the active CA has expired; and no more than 10 rotations have failed since the start.
   * Each problem found, by name; none when healthy.
   */
  healthProblems(): Record<string, string> {
    const problems: Record<string, string> = {};
    try {
      this.signer.signX509Svid({
        spiffeId: `spiffe://${this.options.trustDomain}/for/health/check/only`,
        publicKeySpki: healthCheckKey,
        ttlSeconds: this.options.serverSvidTtl,
      });
    } catch (error) {
      problems.sign_x509_svid_err = (error as Error).message;
    }
    if (this.rotator.failedRotations() > FAILED_ROTATION_THRESHOLD)
      problems.rotation_err = 'rotations exceed the threshold number of failures';
    return problems;
  }

  /** The bundle from the datastore, cached for a second; during a database outage this fails once the cache is stale. */
  bundle(): Promise<TrustBundle> {
    return this.trustBundle.get();
  }

  async signX509Svid(request: X509SvidRequest): Promise<SignedX509Svid> {
    return this.signer.signX509Svid(request);
  }

  /**
   * The active X.509 CA's certificate, key and the intermediates above it, to sign a downstream
   * server's CA (NewDownstreamX509CA).
   */
  activeX509Ca(): Promise<{ der: Buffer; privateKey: KeyObject; chain: Buffer[] }> {
    return this.signer.activeX509Ca();
  }

  signJwtSvid(request: { spiffeId: string; audience: string[]; ttlSeconds: number }): Promise<MintedJwtSvid> {
    return this.signer.signJwtSvid(request);
  }

  /**
   * A downstream's JWT key, published here: kept in this bundle, and passed further up when this
   * server is itself a downstream, so the key is trusted in the whole tree.
   */
  publishJwtAuthority(authority: JwtAuthority): Promise<JwtAuthority[]> {
    return this.store.serialize(async () => {
      if (this.upstream) await this.upstream.publishJwtAuthorityUpstream(authority);
      else await this.trustBundle.update((b) => withJwtAuthority(b, authority));
      this.options.logger.info({ local_authority_id: authority.keyId }, 'JWT authority published');
      return (await this.bundle()).jwtAuthorities;
    });
  }

  async authorityState(
    kind: AuthorityKind,
  ): Promise<{ active?: AuthoritySummary; prepared?: AuthoritySummary; old?: AuthoritySummary }> {
    const states = this.store.journal.states(kind);
    return { active: summary(states.active), prepared: summary(states.prepared), old: summary(states.old) };
  }

  prepare(kind: AuthorityKind): Promise<AuthoritySummary> {
    return this.change(async () => {
      const entry = this.store.journal.prepare(kind, await this.newAuthority(kind));
      await this.publish();
      if (kind === 'x509') this.options.metrics.preparedX509Ca();
      else this.options.metrics.preparedJwtKey();
      this.options.logger.info(
        { authority_id: entry.authorityId, expiration: new Date(entry.notAfter * 1000).toISOString() },
        kind === 'x509' ? 'X509 CA prepared' : 'JWT key prepared',
      );
      return entry;
    });
  }

  activate(kind: AuthorityKind, authorityId: string): Promise<AuthoritySummary> {
    return this.change(async () => {
      const entry = this.store.journal.activate(kind, authorityId);
      await this.signer.load();
      if (kind === 'x509') {
        this.options.metrics.activatedX509Ca(entry.notAfter - Math.floor(Date.now() / 1000));
        this.serverSvid.rotate();
      } else {
        this.options.metrics.activatedJwtKey();
      }
      this.options.logger.info(
        { authority_id: entry.authorityId, expiration: new Date(entry.notAfter * 1000).toISOString() },
        kind === 'x509' ? 'X509 CA activated' : 'JWT key activated',
      );
      return entry;
    });
  }

  taint(kind: AuthorityKind, authorityId: string): Promise<AuthoritySummary> {
    return this.distrust('taint', kind, authorityId);
  }

  revoke(kind: AuthorityKind, authorityId: string): Promise<AuthoritySummary> {
    return this.distrust('revoke', kind, authorityId);
  }

  async taintUpstream(authorityId: string): Promise<string> {
    return this.upstreamSync().taintUpstream(authorityId);
  }

  async revokeUpstream(authorityId: string): Promise<string> {
    return this.upstreamSync().revokeUpstream(authorityId);
  }

  serverTlsIdentity(): TlsIdentity {
    return this.serverSvid.tlsIdentity();
  }

  onServerIdentityChange(listener: (identity: TlsIdentity) => void): void {
    this.serverSvid.onChange(listener);
  }

  private upstreamSync(): UpstreamSync {
    if (!this.upstream) throw RpcError.failedPrecondition('upstream authority is not configured');
    return this.upstream;
  }

  private distrust(
    action: keyof typeof DISTRUST,
    kind: AuthorityKind,
    authorityId: string,
  ): Promise<AuthoritySummary> {
    const { done, bundle } = DISTRUST[action];
    return this.change(async () => {
      if (kind === 'x509' && this.upstream)
        throw new RpcError(
          grpc.status.FAILED_PRECONDITION,
          `local authority can't be ${done} if there is an upstream authority`,
        );
      const entry = this.store.journal[action](kind, authorityId);
      await this.trustBundle.update((b) => bundle[kind](b, authorityId));
      this.options.logger.info(
        { authority_id: authorityId },
        `${kind === 'x509' ? 'X.509' : 'JWT'} authority ${done} successfully`,
      );
      return entry;
    });
  }

  /** A journal change: validated, applied, persisted; on any failure the journal is left as it was. */
  private change(fn: () => Promise<JournalEntry>): Promise<AuthoritySummary> {
    return this.store.serialize(() =>
      this.store
        .transaction(async () => {
          const entry = await fn();
          await this.store.save();
          return summary(entry)!;
        })
        .catch((error: unknown) => {
          throw journalErrorToRpc(error);
        }),
    );
  }

  private async newAuthority(kind: AuthorityKind): Promise<NewAuthority> {
    const { keyManager, trustDomain, caTtl } = this.options;
    if (kind === 'x509')
      return this.upstream
        ? this.upstream.newX509Authority()
        : newSelfSignedX509Authority({ keyManager, trustDomain, caTtl });
    const entry = await newJwtAuthority(keyManager, caTtl);
    await this.upstream?.publishNewJwtAuthority(entry);
    return entry;
  }

  /** Every authority the journal holds is in the bundle (a prepared root is published before it signs). */
  private async publish(): Promise<void> {
    await this.trustBundle.update((bundle) => {
      let next = bundle;
      // A downstream's intermediates travel in SVID chains; its bundle holds the upstream roots.
      for (const entry of this.upstream ? [] : this.store.journal.entries('x509')) {
        const before = next;
        next = withX509Authority(next, Buffer.from(entry.material, 'base64'));
        if (entry.tainted && next !== before) next = withX509AuthorityTainted(next, entry.authorityId);
      }
      for (const entry of this.store.journal.entries('jwt')) {
        next = withJwtAuthority(next, {
          keyId: entry.authorityId,
          publicKeySpki: Buffer.from(entry.material, 'base64'),
          expiresAt: entry.notAfter,
          tainted: entry.tainted,
        });
      }
      return next;
    });
  }
}
