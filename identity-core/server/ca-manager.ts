import {
  X509Certificate,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Datastore } from '../datastore/datastore.js';
import { CaJournal, CaJournalError, type AuthorityKind, type JournalEntry } from '../pki/ca-journal.js';
import { shouldActivate, shouldPrepare } from '../pki/ca-rotation-policy.js';
import type { KeyManager } from '../pki/key-manager.js';
import { X509SvidMinter } from '../pki/svid-minter.js';
import { writeCsr } from '../pki/csr-writer.js';
import { createSelfSignedCa } from '../pki/x509-ca.js';
import { certificateKeyIds } from '../spiffe/certificate-key-ids.js';
import { mintJwtSvid, type MintedJwtSvid } from '../spiffe/jwt-svid.js';
import {
  withJwtAuthority,
  withJwtAuthorityTainted,
  withX509Authority,
  withX509AuthorityTainted,
  withoutJwtAuthority,
  withoutX509Authority,
  x509AuthorityId,
  type JwtAuthority,
  type TrustBundle,
} from '../spiffe/trust-bundle.js';
import { RpcError } from '../transport/rpc-error.js';
import type { TlsIdentity } from '../transport/peer-tagged-server.js';
import type { ServerMetrics } from './server-metrics.js';
import { renewalTime } from '../agent/renewal-policy.js';
import { mergeUpstreamBundle } from './downstream-bundle.js';
import type { UpstreamClient } from './upstream-client.js';

export type { AuthorityKind };

export interface AuthoritySummary {
  authorityId: string;
  expiresAt: number;
  upstreamAuthorityId?: string;
}

export interface SignedX509Svid {
  /** Leaf first. */
  certificateChain: Buffer[];
  serial: bigint;
  notAfter: number;
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

/** How long GetBundle answers from memory before reading the datastore again, as SPIRE's 1 s cache. */
const BUNDLE_CACHE_MS = 1000;
const JOURNAL_ID_FILE = 'ca-journal-id';
const REVOKED_UPSTREAM_FILE = 'revoked-upstream-authorities.json';
const DEFAULT_UPSTREAM_BUNDLE_POLL_MS = 5000;
/** A downstream retries its first intermediate this often until the upstream answers. */
const FIRST_INTERMEDIATE_RETRY_MS = 2000;

const summary = (entry: JournalEntry | undefined): AuthoritySummary | undefined =>
  entry
    ? {
        authorityId: entry.authorityId,
        expiresAt: entry.notAfter,
        ...(entry.upstreamAuthorityId ? { upstreamAuthorityId: entry.upstreamAuthorityId } : {}),
      }
    : undefined;

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A JWT key id: 32 random letters and digits, as SPIRE's, so no id can be mistaken for a CLI flag. */
function newJwtKeyId(): string {
  let id = '';
  while (id.length < 32)
    for (const byte of randomBytes(48))
      // 62 × 4 = 248: bytes above are dropped so every character is equally likely.
      if (byte < 248 && id.length < 32) id += KEY_ID_ALPHABET[byte % 62];
  return id;
}

/** Key ids of every authority an X.509 journal entry depends on: its own chain's issuers up to a root. */
function chainAuthorityIds(entry: JournalEntry): string[] {
  const chain = [entry.material, ...(entry.upstreamChain ?? [])].map((c) => Buffer.from(c, 'base64'));
  return chain.flatMap((der, index) => {
    const { subjectKeyId, authorityKeyId } = certificateKeyIds(der);
    return index > 0 ? [subjectKeyId, authorityKeyId] : [authorityKeyId];
  });
}

function journalErrorToRpc(error: unknown): unknown {
  if (!(error instanceof CaJournalError)) return error;
  const code = {
    FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
    INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
    NOT_FOUND: grpc.status.NOT_FOUND,
  }[error.code];
  return new RpcError(code, error.message);
}

/**
 * The server's authorities: the CA journal (persisted in the datastore), the keys behind it, the trust
 * bundle it keeps in step, automatic rotation at SPIRE's thresholds, signing of X509-SVIDs and
 * JWT-SVIDs, and the server's own SVID. Journal changes are serialized.
 */
export class CaManager {
  private journal = new CaJournal();
  private journalId: number | undefined;
  private minter: X509SvidMinter | undefined;
  /** The active CA and any intermediates above it: what follows the leaf in every SVID chain. */
  private signingChain: Buffer[] = [];
  /** Upstream roots this downstream revoked locally, so polling does not bring them back. */
  private revokedUpstream = new Set<string>();
  private pollTimer: NodeJS.Timeout | undefined;
  private jwtKey: { keyId: string; privateKey: KeyObject } | undefined;
  private serverIdentity:
    (TlsIdentity & { notBefore: number; notAfter: number; renewAt: number }) | undefined;
  private readonly identityListeners: ((identity: TlsIdentity) => void)[] = [];
  private bundleCache: { bundle: TrustBundle; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: CaManagerOptions) {}

  /** Runs journal changes one at a time, in order. */
  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async start(): Promise<void> {
    await this.serialize(async () => {
      await this.loadJournal();
      await this.loadRevokedUpstream();
      this.options.upstream?.start();
      for (const kind of ['x509', 'jwt'] as const) {
        if (!this.journal.current(kind)) {
          const created = await this.createFirstAuthority(kind);
          this.journal.bootstrap(kind, created);
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
      await this.saveJournal();
      await this.loadSigners();
    });
    this.renewServerSvid();
    this.timer = setInterval(() => void this.tick(), this.options.rotationCheckIntervalMs);
    this.timer.unref();
    if (this.options.upstream) {
      await this.pollUpstreamBundle();
      this.pollTimer = setInterval(
        () => void this.pollUpstreamBundle(),
        this.options.upstreamBundlePollMs ?? DEFAULT_UPSTREAM_BUNDLE_POLL_MS,
      );
      this.pollTimer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.options.upstream?.stop();
  }

  get isDownstream(): boolean {
    return this.options.upstream !== undefined;
  }

  hasActiveAuthority(): boolean {
    return this.minter !== undefined && this.journal.current('x509')?.status === 'ACTIVE';
  }

  /** The bundle from the datastore, cached for a second; during a database outage this fails once the cache is stale. */
  async bundle(): Promise<TrustBundle> {
    if (this.bundleCache && Date.now() - this.bundleCache.at < BUNDLE_CACHE_MS)
      return this.bundleCache.bundle;
    const bundle = await this.options.datastore.bundles.get(this.options.trustDomain);
    if (!bundle) throw new Error('trust domain bundle is missing');
    this.bundleCache = { bundle, at: Date.now() };
    return bundle;
  }

  async signX509Svid(request: {
    spiffeId: string;
    publicKeySpki: Buffer;
    ttlSeconds: number;
    dnsNames: string[];
  }): Promise<SignedX509Svid> {
    if (!this.minter) throw RpcError.unavailable('server is initializing');
    const minted = this.minter.mint(request);
    return {
      certificateChain: [minted.der, ...this.intermediates()],
      serial: minted.serial,
      notAfter: minted.notAfter,
    };
  }

  /** What follows the leaf in an SVID chain: nothing under a root CA, the intermediates under a downstream one. */
  private intermediates(): Buffer[] {
    return this.options.upstream ? this.signingChain : [];
  }

  /**
   * The active X.509 CA's certificate, key and the intermediates above it, to sign a downstream
   * server's CA (NewDownstreamX509CA).
   */
  async activeX509Ca(): Promise<{ der: Buffer; privateKey: KeyObject; chain: Buffer[] }> {
    const current = this.journal.current('x509');
    if (!this.minter || !current) throw RpcError.unavailable('server is initializing');
    const privateKey = await this.options.keyManager.getKey(current.keyId);
    if (!privateKey) throw RpcError.internal('the active X.509 CA key is missing');
    return { der: this.signingChain[0]!, privateKey, chain: this.signingChain };
  }

  /**
   * A downstream's JWT key, published here: kept in this bundle, and passed further up when this
   * server is itself a downstream, so the key is trusted in the whole tree.
   */
  publishJwtAuthority(authority: JwtAuthority): Promise<JwtAuthority[]> {
    return this.serialize(async () => {
      if (this.options.upstream) {
        const upstreamKeys = await this.options.upstream.publishJwtAuthority(authority);
        await this.updateBundle((b) => upstreamKeys.reduce((next, key) => withJwtAuthority(next, key), b));
      } else {
        await this.updateBundle((b) => withJwtAuthority(b, authority));
      }
      this.options.logger.info({ local_authority_id: authority.keyId }, 'JWT authority published');
      return (await this.bundle()).jwtAuthorities;
    });
  }

  async signJwtSvid(request: {
    spiffeId: string;
    audience: string[];
    ttlSeconds: number;
  }): Promise<MintedJwtSvid> {
    if (!this.jwtKey) throw RpcError.unavailable('server is initializing');
    const current = this.journal.current('jwt')!;
    const now = Math.floor(Date.now() / 1000);
    // A JWT-SVID never outlives the key that signed it.
    const ttlSeconds = Math.max(1, Math.min(request.ttlSeconds, current.notAfter - now));
    return mintJwtSvid({
      ...request,
      ttlSeconds,
      privateKey: this.jwtKey.privateKey,
      keyId: current.authorityId,
    });
  }

  async authorityState(
    kind: AuthorityKind,
  ): Promise<{ active?: AuthoritySummary; prepared?: AuthoritySummary; old?: AuthoritySummary }> {
    const states = this.journal.states(kind);
    return { active: summary(states.active), prepared: summary(states.prepared), old: summary(states.old) };
  }

  prepare(kind: AuthorityKind): Promise<AuthoritySummary> {
    return this.change(async () => {
      const entry = this.journal.prepare(kind, await this.createAuthority(kind));
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
      const entry = this.journal.activate(kind, authorityId);
      await this.loadSigners();
      if (kind === 'x509') {
        this.options.metrics.activatedX509Ca(entry.notAfter - Math.floor(Date.now() / 1000));
        this.renewServerSvid();
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
    return this.change(async () => {
      if (kind === 'x509' && this.options.upstream)
        throw new RpcError(
          grpc.status.FAILED_PRECONDITION,
          "local authority can't be tainted if there is an upstream authority",
        );
      const entry = this.journal.taint(kind, authorityId);
      await this.updateBundle((b) =>
        kind === 'x509' ? withX509AuthorityTainted(b, authorityId) : withJwtAuthorityTainted(b, authorityId),
      );
      this.options.logger.info(
        { authority_id: authorityId },
        kind === 'x509' ? 'X.509 authority tainted successfully' : 'JWT authority tainted successfully',
      );
      return entry;
    });
  }

  revoke(kind: AuthorityKind, authorityId: string): Promise<AuthoritySummary> {
    return this.change(async () => {
      if (kind === 'x509' && this.options.upstream)
        throw new RpcError(
          grpc.status.FAILED_PRECONDITION,
          "local authority can't be revoked if there is an upstream authority",
        );
      const entry = this.journal.revoke(kind, authorityId);
      await this.updateBundle((b) =>
        kind === 'x509' ? withoutX509Authority(b, authorityId) : withoutJwtAuthority(b, authorityId),
      );
      this.options.logger.info(
        { authority_id: authorityId },
        kind === 'x509' ? 'X.509 authority revoked successfully' : 'JWT authority revoked successfully',
      );
      return entry;
    });
  }

  /**
   * TaintX509UpstreamAuthority: distrusts an upstream root in this server's bundle (agents re-issue what
   * chains to it). The root the active CA chains to cannot be tainted: rotate away from it first.
   */
  taintUpstream(authorityId: string): Promise<string> {
    return this.serialize(async () => {
      const bundle = await this.upstreamAuthorityInBundle(authorityId);
      const current = this.journal.current('x509');
      if (current && chainAuthorityIds(current).includes(authorityId))
        throw RpcError.invalidArgument('unable to use upstream authority signing current authority');
      if (bundle.x509Authorities.find((a) => x509AuthorityId(a.der) === authorityId)!.tainted)
        throw RpcError.failedPrecondition('authority is already tainted');
      await this.updateBundle((b) => withX509AuthorityTainted(b, authorityId));
      this.options.logger.info(
        { subject_key_id: authorityId },
        'X.509 upstream authority tainted successfully',
      );
      return authorityId;
    });
  }

  /** RevokeX509UpstreamAuthority: removes a tainted upstream root from this server's bundle for good. */
  revokeUpstream(authorityId: string): Promise<string> {
    return this.serialize(async () => {
      const bundle = await this.upstreamAuthorityInBundle(authorityId);
      if (!bundle.x509Authorities.find((a) => x509AuthorityId(a.der) === authorityId)!.tainted)
        throw RpcError.failedPrecondition('it is not possible to revoke an untainted authority');
      this.revokedUpstream.add(authorityId);
      await this.saveRevokedUpstream();
      await this.updateBundle((b) => withoutX509Authority(b, authorityId));
      this.options.logger.info(
        { subject_key_id: authorityId },
        'X.509 upstream authority successfully revoked',
      );
      return authorityId;
    });
  }

  private async upstreamAuthorityInBundle(authorityId: string): Promise<TrustBundle> {
    if (!this.options.upstream) throw RpcError.failedPrecondition('upstream authority is not configured');
    if (authorityId === '') throw RpcError.invalidArgument('no subject key ID provided');
    const bundle = await this.bundle();
    if (!bundle.x509Authorities.some((a) => x509AuthorityId(a.der) === authorityId))
      throw RpcError.invalidArgument('no upstream authority found with provided subject key ID');
    return bundle;
  }

  serverTlsIdentity(): TlsIdentity {
    if (!this.serverIdentity) throw new Error('server SVID not minted yet');
    return {
      certificateChain: this.serverIdentity.certificateChain,
      privateKeyPem: this.serverIdentity.privateKeyPem,
    };
  }

  onServerIdentityChange(listener: (identity: TlsIdentity) => void): void {
    this.identityListeners.push(listener);
  }

  /** A journal change: validated, applied, persisted; on any failure the journal is reloaded from the datastore. */
  private change(fn: () => Promise<JournalEntry>): Promise<AuthoritySummary> {
    return this.serialize(async () => {
      const before = this.journal.toJSON();
      try {
        const entry = await fn();
        await this.saveJournal();
        return summary(entry)!;
      } catch (error) {
        this.journal = CaJournal.fromJSON(before);
        throw journalErrorToRpc(error);
      }
    });
  }

  private async tick(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    for (const kind of ['x509', 'jwt'] as const) {
      const current = this.journal.current(kind);
      const next = this.journal.next(kind);
      if (!current) continue;
      try {
        let prepared = next?.status === 'PREPARED' ? next : undefined;
        if (!prepared && !next?.tainted && shouldPrepare(current, now)) {
          await this.prepare(kind);
          prepared = this.journal.next(kind);
        }
        // Activation follows in the same check when it is already due, e.g. a downstream whose
        // upstream was away past its activation threshold.
        if (prepared && shouldActivate(current, now)) await this.activate(kind, prepared.authorityId);
      } catch (error) {
        this.options.logger.error(
          { err: (error as Error).message },
          `Unable to rotate ${kind === 'x509' ? 'X509 CA' : 'JWT key'}`,
        );
      }
    }
    if (this.serverIdentity && Date.now() >= this.serverIdentity.renewAt) this.renewServerSvid();
    const current = this.journal.current('x509');
    if (current) this.options.metrics.activeX509CaTtl(current.notAfter - now);
  }

  private renewServerSvid(): void {
    if (!this.minter) return;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let minted: ReturnType<X509SvidMinter['mint']>;
    try {
      minted = this.minter.mint({
        spiffeId: `spiffe://${this.options.trustDomain}/spire/server`,
        publicKeySpki: publicKey.export({ format: 'der', type: 'spki' }),
        ttlSeconds: this.options.serverSvidTtl,
      });
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message }, 'Unable to renew the server SVID');
      return;
    }
    const notBefore = minted.notBefore * 1000;
    const notAfter = minted.notAfter * 1000;
    this.serverIdentity = {
      certificateChain: [minted.der, ...this.intermediates()],
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      notBefore,
      notAfter,
      renewAt: renewalTime(notBefore, notAfter),
    };
    for (const listener of this.identityListeners) listener(this.serverTlsIdentity());
  }

  /** A downstream cannot start signing before its upstream answers: it keeps asking, as SPIRE retries. */
  private async createFirstAuthority(kind: AuthorityKind): Promise<Omit<JournalEntry, 'status' | 'tainted'>> {
    for (;;) {
      try {
        return await this.createAuthority(kind);
      } catch (error) {
        if (!this.options.upstream) throw error;
        this.options.upstream.reset();
        this.options.logger.warn(
          { err: (error as Error).message },
          kind === 'x509'
            ? 'Unable to obtain an X509 CA from the upstream authority; retrying'
            : 'Unable to publish the JWT key upstream; retrying',
        );
        await new Promise((r) => setTimeout(r, FIRST_INTERMEDIATE_RETRY_MS));
      }
    }
  }

  private async createAuthority(kind: AuthorityKind): Promise<Omit<JournalEntry, 'status' | 'tainted'>> {
    const suffix = randomBytes(8).toString('hex');
    if (kind === 'x509' && this.options.upstream) {
      const keyId = `x509-ca-${suffix}`;
      const privateKey = await this.options.keyManager.generateKey(keyId);
      const minted = await this.options.upstream
        .mintX509Ca(writeCsr(privateKey), this.options.caTtl)
        .catch((error: unknown) => {
          this.options.upstream!.reset();
          throw new Error(`upstream authority: ${(error as Error).message}`);
        });
      const ca = minted.caChain[0]!;
      const cert = new X509Certificate(ca);
      if (!cert.publicKey.equals(createPublicKey(privateKey)))
        throw new Error('upstream authority signed a CA for another key');
      await this.updateBundle((b) =>
        minted.upstreamRoots.reduce((next, root) => withX509Authority(next, root), b),
      );
      return {
        authorityId: x509AuthorityId(ca),
        keyId,
        notBefore: Math.floor(new Date(cert.validFrom).getTime() / 1000),
        notAfter: Math.floor(new Date(cert.validTo).getTime() / 1000),
        material: ca.toString('base64'),
        upstreamChain: minted.caChain.slice(1).map((c) => c.toString('base64')),
        upstreamAuthorityId: certificateKeyIds(ca).authorityKeyId,
      };
    }
    if (kind === 'x509') {
      const keyId = `x509-ca-${suffix}`;
      const privateKey = await this.options.keyManager.generateKey(keyId);
      const ca = await createSelfSignedCa({
        trustDomain: this.options.trustDomain,
        privateKey,
        ttlSeconds: this.options.caTtl,
      });
      return {
        authorityId: ca.authorityId,
        keyId,
        notBefore: ca.notBefore,
        notAfter: ca.notAfter,
        material: ca.der.toString('base64'),
      };
    }
    const keyId = `jwt-key-${suffix}`;
    const privateKey = await this.options.keyManager.generateKey(keyId);
    const now = Math.floor(Date.now() / 1000);
    const entry = {
      authorityId: newJwtKeyId(),
      keyId,
      notBefore: now,
      notAfter: now + this.options.caTtl,
      material: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64'),
    };
    // A downstream's JWT key is only useful once the whole tree trusts it, so publication comes first.
    if (this.options.upstream) {
      await this.options.upstream
        .publishJwtAuthority({
          keyId: entry.authorityId,
          publicKeySpki: Buffer.from(entry.material, 'base64'),
          expiresAt: entry.notAfter,
          tainted: false,
        })
        .catch((error: unknown) => {
          this.options.upstream!.reset();
          throw new Error(`publishing the JWT key upstream: ${(error as Error).message}`);
        });
    }
    return entry;
  }

  /** Every authority the journal holds is in the bundle (a prepared root is published before it signs). */
  private async publish(): Promise<void> {
    await this.updateBundle((bundle) => {
      let next = bundle;
      // A downstream's intermediates travel in SVID chains; its bundle holds the upstream roots.
      for (const entry of this.options.upstream ? [] : this.journal.entries('x509')) {
        const before = next;
        next = withX509Authority(next, Buffer.from(entry.material, 'base64'));
        if (entry.tainted && next !== before) next = withX509AuthorityTainted(next, entry.authorityId);
      }
      for (const entry of this.journal.entries('jwt')) {
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

  private async updateBundle(change: (bundle: TrustBundle) => TrustBundle): Promise<void> {
    const empty: TrustBundle = {
      trustDomain: this.options.trustDomain,
      x509Authorities: [],
      jwtAuthorities: [],
      refreshHint: 0,
      sequenceNumber: 0,
    };
    const updated = await this.options.datastore.bundles.update(this.options.trustDomain, (current) =>
      change(current ?? empty),
    );
    this.bundleCache = { bundle: updated, at: Date.now() };
  }

  private async loadSigners(): Promise<void> {
    const x509 = this.journal.current('x509');
    const jwt = this.journal.current('jwt');
    if (x509) {
      const privateKey = await this.options.keyManager.getKey(x509.keyId);
      if (!privateKey) throw new Error(`key ${x509.keyId} of the active X.509 authority is missing`);
      this.minter = new X509SvidMinter({ der: Buffer.from(x509.material, 'base64'), privateKey });
      this.signingChain = [x509.material, ...(x509.upstreamChain ?? [])].map((c) => Buffer.from(c, 'base64'));
    }
    if (jwt) {
      const privateKey = await this.options.keyManager.getKey(jwt.keyId);
      if (!privateKey) throw new Error(`key ${jwt.keyId} of the active JWT authority is missing`);
      this.jwtKey = { keyId: jwt.keyId, privateKey };
    }
  }

  /**
   * Resumes the journal this server wrote before, if its keys are still there (disk key manager); with
   * the memory key manager, or keys gone, the server starts with new authorities, as SPIRE does.
   */
  private async loadJournal(): Promise<void> {
    const idFile = join(this.options.dataDir, JOURNAL_ID_FILE);
    const text = await readFile(idFile, 'utf8').catch(() => undefined);
    if (!text) return;
    const record = await this.options.datastore.caJournals.load(Number(text.trim()));
    if (!record) return;
    const journal = CaJournal.fromJSON(record.data);
    for (const kind of ['x509', 'jwt'] as const) {
      for (const entry of journal.entries(kind)) {
        if (!(await this.options.keyManager.getKey(entry.keyId))) {
          this.options.logger.warn(
            { key_id: entry.keyId },
            'Journal keys are gone; starting with new authorities',
          );
          this.journalId = record.id;
          return;
        }
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const current = journal.current('x509');
    if (current && current.notAfter <= now) {
      this.options.logger.warn(
        { authority_id: current.authorityId },
        'Active X509 CA has expired; starting with new authorities',
      );
      this.journalId = record.id;
      return;
    }
    this.journal = journal;
    this.journalId = record.id;
  }

  /**
   * A downstream's view of its upstream, every few seconds: when the active intermediate chains to an
   * authority the upstream has tainted, prepare and activate a new one at once and taint the old one;
   * drop an old intermediate whose root the upstream revoked; then mirror the upstream bundle here, so
   * agents see a taint only once this server already signs from a trusted root.
   */
  private async pollUpstreamBundle(): Promise<void> {
    const upstream = this.options.upstream!;
    let upstreamBundle: TrustBundle;
    try {
      upstreamBundle = await upstream.fetchBundle();
    } catch (error) {
      upstream.reset();
      this.options.logger.warn({ err: (error as Error).message }, 'Failed to fetch the upstream bundle');
      return;
    }
    await this.serialize(async () => {
      const ids = (tainted: boolean) =>
        new Set(
          upstreamBundle.x509Authorities
            .filter((a) => !tainted || a.tainted)
            .map((a) => x509AuthorityId(a.der)),
        );
      const tainted = ids(true);
      const present = ids(false);
      const current = this.journal.current('x509');
      if (current && chainAuthorityIds(current).some((id) => tainted.has(id))) {
        if (!(await this.rotateAwayFromTaint(current, tainted))) return;
      }
      const old = this.journal.next('x509');
      if (old?.status === 'OLD' && old.tainted && !present.has(chainAuthorityIds(old).at(-1)!)) {
        this.journal.revoke('x509', old.authorityId);
        await this.saveJournal();
        this.options.logger.info(
          { authority_id: old.authorityId },
          'Old X.509 authority revoked: its upstream root was revoked',
        );
      }
      const own: JwtAuthority[] = this.journal.entries('jwt').map((e) => ({
        keyId: e.authorityId,
        publicKeySpki: Buffer.from(e.material, 'base64'),
        expiresAt: e.notAfter,
        tainted: e.tainted,
      }));
      await this.updateBundle((b) => mergeUpstreamBundle(b, upstreamBundle, own, this.revokedUpstream));
      // A key whose publication was lost (the upstream restarted on a fresh datastore, say) is sent again.
      const published = new Set(upstreamBundle.jwtAuthorities.map((a) => a.keyId));
      for (const key of own.filter((k) => !published.has(k.keyId))) {
        await upstream.publishJwtAuthority(key).catch((error: unknown) => {
          this.options.logger.warn({ err: (error as Error).message }, 'Unable to publish JWT key upstream');
        });
      }
    });
  }

  /** Runs inside the journal queue; false when the new intermediate could not be had (retried next poll). */
  private async rotateAwayFromTaint(current: JournalEntry, tainted: Set<string>): Promise<boolean> {
    const before = this.journal.toJSON();
    try {
      this.options.logger.warn(
        { authority_id: current.authorityId },
        'Current X.509 authority chains to a tainted upstream authority; rotating it now',
      );
      let next = this.journal.next('x509');
      if (next?.status === 'OLD' && next.tainted) {
        this.journal.revoke('x509', next.authorityId);
        next = undefined;
      }
      const usable =
        next?.status === 'PREPARED' && !chainAuthorityIds(next).some((id) => tainted.has(id))
          ? next
          : this.journal.prepare('x509', await this.createAuthority('x509'));
      const activated = this.journal.activate('x509', usable.authorityId);
      this.journal.taint('x509', current.authorityId);
      await this.saveJournal();
      await this.loadSigners();
      this.options.metrics.preparedX509Ca();
      this.options.metrics.activatedX509Ca(activated.notAfter - Math.floor(Date.now() / 1000));
      this.renewServerSvid();
      this.options.logger.info(
        { authority_id: activated.authorityId, tainted_authority_id: current.authorityId },
        'X509 CA activated; the old one is tainted',
      );
      return true;
    } catch (error) {
      this.journal = CaJournal.fromJSON(before);
      await this.loadSigners();
      this.options.logger.error(
        { err: (error as Error).message },
        'Unable to rotate away from a tainted upstream authority',
      );
      return false;
    }
  }

  private async loadRevokedUpstream(): Promise<void> {
    const text = await readFile(join(this.options.dataDir, REVOKED_UPSTREAM_FILE), 'utf8').catch(() => '');
    if (text) this.revokedUpstream = new Set(JSON.parse(text) as string[]);
  }

  private async saveRevokedUpstream(): Promise<void> {
    await mkdir(this.options.dataDir, { recursive: true, mode: 0o700 });
    const file = join(this.options.dataDir, REVOKED_UPSTREAM_FILE);
    await writeFile(`${file}.tmp`, JSON.stringify([...this.revokedUpstream]));
    await rename(`${file}.tmp`, file);
  }

  private async saveJournal(): Promise<void> {
    this.journalId = await this.options.datastore.caJournals.save({
      ...(this.journalId !== undefined ? { id: this.journalId } : {}),
      data: this.journal.toJSON(),
      activeX509AuthorityId: this.journal.current('x509')?.authorityId ?? '',
    });
    await mkdir(this.options.dataDir, { recursive: true, mode: 0o700 });
    const idFile = join(this.options.dataDir, JOURNAL_ID_FILE);
    await writeFile(`${idFile}.tmp`, `${this.journalId}\n`);
    await rename(`${idFile}.tmp`, idFile);
  }
}
