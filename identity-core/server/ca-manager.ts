import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Datastore } from '../datastore/datastore.js';
import { CaJournal, CaJournalError, type AuthorityKind, type JournalEntry } from '../pki/ca-journal.js';
import { shouldActivate, shouldPrepare } from '../pki/ca-rotation-policy.js';
import type { KeyManager } from '../pki/key-manager.js';
import { X509SvidMinter } from '../pki/svid-minter.js';
import { createSelfSignedCa } from '../pki/x509-ca.js';
import { mintJwtSvid, type MintedJwtSvid } from '../spiffe/jwt-svid.js';
import {
  withJwtAuthority,
  withJwtAuthorityTainted,
  withX509Authority,
  withX509AuthorityTainted,
  withoutJwtAuthority,
  withoutX509Authority,
  type TrustBundle,
} from '../spiffe/trust-bundle.js';
import { RpcError } from '../transport/rpc-error.js';
import type { TlsIdentity } from '../transport/peer-tagged-server.js';
import type { ServerMetrics } from './server-metrics.js';
import { renewalTime } from '../agent/renewal-policy.js';

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
}

/** How long GetBundle answers from memory before reading the datastore again, as SPIRE's 1 s cache. */
const BUNDLE_CACHE_MS = 1000;
const JOURNAL_ID_FILE = 'ca-journal-id';

const summary = (entry: JournalEntry | undefined): AuthoritySummary | undefined =>
  entry ? { authorityId: entry.authorityId, expiresAt: entry.notAfter } : undefined;

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
      for (const kind of ['x509', 'jwt'] as const) {
        if (!this.journal.current(kind)) {
          const created = await this.createAuthority(kind);
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
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
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
    return { certificateChain: [minted.der], serial: minted.serial, notAfter: minted.notAfter };
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
        if (next?.status === 'PREPARED' && shouldActivate(current, now))
          await this.activate(kind, next.authorityId);
        else if (next?.status !== 'PREPARED' && !next?.tainted && shouldPrepare(current, now))
          await this.prepare(kind);
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
    const minted = this.minter.mint({
      spiffeId: `spiffe://${this.options.trustDomain}/spire/server`,
      publicKeySpki: publicKey.export({ format: 'der', type: 'spki' }),
      ttlSeconds: this.options.serverSvidTtl,
    });
    const notBefore = minted.notBefore * 1000;
    const notAfter = minted.notAfter * 1000;
    this.serverIdentity = {
      certificateChain: [minted.der],
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      notBefore,
      notAfter,
      renewAt: renewalTime(notBefore, notAfter),
    };
    for (const listener of this.identityListeners) listener(this.serverTlsIdentity());
  }

  private async createAuthority(kind: AuthorityKind): Promise<Omit<JournalEntry, 'status' | 'tainted'>> {
    const suffix = randomBytes(8).toString('hex');
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
    return {
      authorityId: randomBytes(24).toString('base64url'),
      keyId,
      notBefore: now,
      notAfter: now + this.options.caTtl,
      material: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64'),
    };
  }

  /** Every authority the journal holds is in the bundle (a prepared root is published before it signs). */
  private async publish(): Promise<void> {
    await this.updateBundle((bundle) => {
      let next = bundle;
      for (const entry of this.journal.entries('x509')) {
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
