import type { BundleRepository } from '../../datastore/bundle-repository.js';
import type { TrustBundle } from '../../spiffe/trust-bundle.js';

/** How long the bundle is answered from memory before the datastore is read again, as SPIRE's 1 s cache. */
const BUNDLE_CACHE_MS = 1000;

/**
 * The trust domain's bundle as the server keeps it: in the datastore, changed in a transaction there,
 * read through a one-second cache (so during a database outage reads fail once the cache is stale).
 */
export class TrustDomainBundle {
  private cache: { bundle: TrustBundle; at: number } | undefined;

  constructor(
    private readonly trustDomain: string,
    private readonly bundles: BundleRepository,
  ) {}

  async get(): Promise<TrustBundle> {
    if (this.cache && Date.now() - this.cache.at < BUNDLE_CACHE_MS) return this.cache.bundle;
    const bundle = await this.bundles.get(this.trustDomain);
    if (!bundle) throw new Error('trust domain bundle is missing');
    this.cache = { bundle, at: Date.now() };
    return bundle;
  }

  async update(change: (bundle: TrustBundle) => TrustBundle): Promise<void> {
    const empty: TrustBundle = {
      trustDomain: this.trustDomain,
      x509Authorities: [],
      jwtAuthorities: [],
      refreshHint: 0,
      sequenceNumber: 0,
    };
    const updated = await this.bundles.update(this.trustDomain, (current) => change(current ?? empty));
    this.cache = { bundle: updated, at: Date.now() };
  }
}
