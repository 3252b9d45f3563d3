import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuthorityKind, JournalEntry } from '../../pki/ca-journal.js';
import type { KeyManager } from '../../pki/key-manager.js';
import { writeCsr } from '../../pki/csr-writer.js';
import { certificateKeyIds } from '../../spiffe/certificate-key-ids.js';
import {
  withJwtAuthority,
  withX509Authority,
  withX509AuthorityTainted,
  withoutX509Authority,
  x509AuthorityId,
  type JwtAuthority,
  type TrustBundle,
  type X509Authority,
} from '../../spiffe/trust-bundle.js';
import { RpcError } from '../../transport/rpc-error.js';
import type { ServerMetrics } from '../server-metrics.js';
import { mergeUpstreamBundle } from './downstream-bundle.js';
import type { JournalStore } from './journal-store.js';
import { newAuthorityKey, type NewAuthority } from './new-authority.js';
import type { ServerSvidRotator } from './server-svid-rotator.js';
import type { CaSigner } from './signer.js';
import type { TrustDomainBundle } from './trust-domain-bundle.js';
import type { UpstreamClient } from './upstream-client.js';

const REVOKED_UPSTREAM_FILE = 'revoked-upstream-authorities.json';
const DEFAULT_UPSTREAM_BUNDLE_POLL_MS = 5000;
/** A downstream retries its first intermediate this often until the upstream answers. */
const FIRST_INTERMEDIATE_RETRY_MS = 2000;

export interface UpstreamSyncOptions {
  client: UpstreamClient;
  store: JournalStore;
  bundle: TrustDomainBundle;
  signer: CaSigner;
  serverSvid: ServerSvidRotator;
  keyManager: KeyManager;
  /** Seconds: the lifetime asked for each intermediate. */
  caTtl: number;
  dataDir: string;
  /** How often the upstream's bundle is polled (SPIRE: 5 s). */
  pollMs?: number;
  metrics: ServerMetrics;
  logger: Logger;
}

/** Key ids of every authority an X.509 journal entry depends on: its own chain's issuers up to a root. */
function chainAuthorityIds(entry: JournalEntry): string[] {
  const chain = [entry.material, ...(entry.upstreamChain ?? [])].map((c) => Buffer.from(c, 'base64'));
  return chain.flatMap((der, index) => {
    const { subjectKeyId, authorityKeyId } = certificateKeyIds(der);
    return index > 0 ? [subjectKeyId, authorityKeyId] : [authorityKeyId];
  });
}

/**
 * A downstream (nested) server's dealings with its upstream, as SPIRE's upstream authority client and
 * bundle updater: its X.509 CAs are intermediates the upstream signs; its JWT keys are published to the
 * upstream; the upstream's bundle is polled and mirrored here, and an upstream taint or revocation is
 * carried into this server's journal; the operator taints and revokes upstream roots in this bundle.
 */
export class UpstreamSync {
  /** Upstream roots this downstream revoked locally, so polling does not bring them back. */
  private revoked = new Set<string>();
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: UpstreamSyncOptions) {}

  async start(): Promise<void> {
    const text = await readFile(join(this.options.dataDir, REVOKED_UPSTREAM_FILE), 'utf8').catch(() => '');
    if (text) this.revoked = new Set(JSON.parse(text) as string[]);
    this.options.client.start();
  }

  /** Polls once now, then every few seconds. */
  async startPolling(): Promise<void> {
    await this.poll();
    this.pollTimer = setInterval(
      () => void this.poll(),
      this.options.pollMs ?? DEFAULT_UPSTREAM_BUNDLE_POLL_MS,
    );
    this.pollTimer.unref();
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.options.client.stop();
  }

  /** A downstream cannot start signing before its upstream answers: it keeps asking, as SPIRE retries. */
  async untilAnswered(kind: AuthorityKind, create: () => Promise<NewAuthority>): Promise<NewAuthority> {
    for (;;) {
      try {
        return await create();
      } catch (error) {
        this.options.client.redial();
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

  /** A new intermediate CA signed by the upstream; the upstream's roots join this bundle. */
  async newX509Authority(): Promise<NewAuthority> {
    const { client } = this.options;
    const issuedAt = Math.floor(Date.now() / 1000);
    const { keyId, privateKey } = await newAuthorityKey(this.options.keyManager, 'x509');
    const minted = await client
      .mintX509Ca(writeCsr(privateKey), this.options.caTtl)
      .catch((error: unknown) => {
        throw new Error(`upstream authority: ${(error as Error).message}`);
      });
    const ca = minted.caChain[0]!;
    const cert = new X509Certificate(ca);
    if (!cert.publicKey.equals(createPublicKey(privateKey)))
      throw new Error('upstream authority signed a CA for another key');
    await this.options.bundle.update((b) =>
      minted.upstreamRoots.reduce((next, root) => withX509Authority(next, root), b),
    );
    return {
      authorityId: x509AuthorityId(ca),
      keyId,
      notBefore: Math.floor(new Date(cert.validFrom).getTime() / 1000),
      notAfter: Math.floor(new Date(cert.validTo).getTime() / 1000),
      issuedAt,
      material: ca.toString('base64'),
      upstreamChain: minted.caChain.slice(1).map((c) => c.toString('base64')),
      upstreamAuthorityId: certificateKeyIds(ca).authorityKeyId,
    };
  }

  /** A downstream's JWT key is only useful once the whole tree trusts it, so it is published before use. */
  async publishNewJwtAuthority(entry: NewAuthority): Promise<void> {
    const { client } = this.options;
    await client
      .publishJwtAuthority({
        keyId: entry.authorityId,
        publicKeySpki: Buffer.from(entry.material, 'base64'),
        expiresAt: entry.notAfter,
        tainted: false,
      })
      .catch((error: unknown) => {
        throw new Error(`publishing the JWT key upstream: ${(error as Error).message}`);
      });
  }

  /** Passes a JWT key published here further up, and keeps every key the upstream then holds. */
  async publishJwtAuthorityUpstream(authority: JwtAuthority): Promise<void> {
    const upstreamKeys = await this.options.client.publishJwtAuthority(authority);
    await this.options.bundle.update((b) =>
      upstreamKeys.reduce((next, key) => withJwtAuthority(next, key), b),
    );
  }

  /**
   * TaintX509UpstreamAuthority: distrusts an upstream root in this server's bundle (agents re-issue what
   * chains to it). The root the active CA chains to cannot be tainted: rotate away from it first.
   */
  taintUpstream(authorityId: string): Promise<string> {
    return this.options.store.serialize(async () => {
      const authority = await this.upstreamAuthority(authorityId);
      const current = this.options.store.journal.current('x509');
      if (current && chainAuthorityIds(current).includes(authorityId))
        throw RpcError.invalidArgument('unable to use upstream authority signing current authority');
      if (authority.tainted) throw RpcError.failedPrecondition('authority is already tainted');
      await this.options.bundle.update((b) => withX509AuthorityTainted(b, authorityId));
      this.options.logger.info(
        { subject_key_id: authorityId },
        'X.509 upstream authority tainted successfully',
      );
      return authorityId;
    });
  }

  /** RevokeX509UpstreamAuthority: removes a tainted upstream root from this server's bundle for good. */
  revokeUpstream(authorityId: string): Promise<string> {
    return this.options.store.serialize(async () => {
      const authority = await this.upstreamAuthority(authorityId);
      if (!authority.tainted)
        throw RpcError.failedPrecondition('it is not possible to revoke an untainted authority');
      this.revoked.add(authorityId);
      await this.saveRevoked();
      await this.options.bundle.update((b) => withoutX509Authority(b, authorityId));
      this.options.logger.info(
        { subject_key_id: authorityId },
        'X.509 upstream authority successfully revoked',
      );
      return authorityId;
    });
  }

  private async upstreamAuthority(authorityId: string): Promise<X509Authority> {
    if (authorityId === '') throw RpcError.invalidArgument('no subject key ID provided');
    const bundle = await this.options.bundle.get();
    const authority = bundle.x509Authorities.find((a) => x509AuthorityId(a.der) === authorityId);
    if (!authority)
      throw RpcError.invalidArgument('no upstream authority found with provided subject key ID');
    return authority;
  }

  /**
   * The upstream, every few seconds: when the active intermediate chains to an authority the upstream
   * has tainted, prepare and activate a new one at once and taint the old one; drop an old intermediate
   * whose root the upstream revoked; then mirror the upstream bundle here, so agents see a taint only
   * once this server already signs from a trusted root.
   */
  private async poll(): Promise<void> {
    const { client, store } = this.options;
    let upstreamBundle: TrustBundle;
    try {
      upstreamBundle = await client.fetchBundle();
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'Failed to fetch the upstream bundle');
      return;
    }
    await store.serialize(async () => {
      const ids = (tainted: boolean) =>
        new Set(
          upstreamBundle.x509Authorities
            .filter((a) => !tainted || a.tainted)
            .map((a) => x509AuthorityId(a.der)),
        );
      const tainted = ids(true);
      const present = ids(false);
      const current = store.journal.current('x509');
      if (current && chainAuthorityIds(current).some((id) => tainted.has(id))) {
        if (!(await this.rotateAwayFromTaint(current, tainted))) return;
      }
      const old = store.journal.next('x509');
      if (
        old?.status === 'OLD' &&
        old.tainted &&
        !old.revoked &&
        !present.has(chainAuthorityIds(old).at(-1)!)
      ) {
        store.journal.revoke('x509', old.authorityId);
        await store.save();
        this.options.logger.info(
          { authority_id: old.authorityId },
          'Old X.509 authority revoked: its upstream root was revoked',
        );
      }
      const own: JwtAuthority[] = store.journal.entries('jwt').map((e) => ({
        keyId: e.authorityId,
        publicKeySpki: Buffer.from(e.material, 'base64'),
        expiresAt: e.notAfter,
        tainted: e.tainted,
      }));
      await this.options.bundle.update((b) => mergeUpstreamBundle(b, upstreamBundle, own, this.revoked));
      // A key whose publication was lost (the upstream restarted on a fresh datastore, say) is sent again.
      const published = new Set(upstreamBundle.jwtAuthorities.map((a) => a.keyId));
      for (const key of own.filter((k) => !published.has(k.keyId))) {
        await client.publishJwtAuthority(key).catch((error: unknown) => {
          this.options.logger.warn({ err: (error as Error).message }, 'Unable to publish JWT key upstream');
        });
      }
    });
  }

  /** Runs inside the journal queue; false when the new intermediate could not be had (retried next poll). */
  private async rotateAwayFromTaint(current: JournalEntry, tainted: Set<string>): Promise<boolean> {
    const { store, signer, metrics, logger } = this.options;
    try {
      await store.transaction(async () => {
        logger.warn(
          { authority_id: current.authorityId },
          'Current X.509 authority chains to a tainted upstream authority; rotating it now',
        );
        let next = store.journal.next('x509');
        if (next?.status === 'OLD' && next.tainted) {
          if (!next.revoked) store.journal.revoke('x509', next.authorityId);
          next = undefined;
        }
        const usable =
          next?.status === 'PREPARED' && !chainAuthorityIds(next).some((id) => tainted.has(id))
            ? next
            : store.journal.prepare('x509', await this.newX509Authority());
        const activated = store.journal.activate('x509', usable.authorityId);
        store.journal.taint('x509', current.authorityId);
        await store.save();
        await signer.load();
        metrics.preparedX509Ca();
        metrics.activatedX509Ca(activated.notAfter - Math.floor(Date.now() / 1000));
        this.options.serverSvid.rotate();
        logger.info(
          { authority_id: activated.authorityId, tainted_authority_id: current.authorityId },
          'X509 CA activated; the old one is tainted',
        );
      });
      return true;
    } catch (error) {
      await signer.load();
      logger.error(
        { err: (error as Error).message },
        'Unable to rotate away from a tainted upstream authority',
      );
      return false;
    }
  }

  private async saveRevoked(): Promise<void> {
    await mkdir(this.options.dataDir, { recursive: true, mode: 0o700 });
    const file = join(this.options.dataDir, REVOKED_UPSTREAM_FILE);
    await writeFile(`${file}.tmp`, JSON.stringify([...this.revoked]));
    await rename(`${file}.tmp`, file);
  }
}
