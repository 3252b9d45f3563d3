import { EventEmitter } from 'node:events';
import type { RegistrationEntry, Selector } from '../datastore/records.js';
import { x509AuthorityId as authorityIdOf, type TrustBundle } from '../spiffe/trust-bundle.js';
import { selectorsMatch } from './unix-attestor.js';

/** An X509-SVID the agent holds for one registration entry. */
export interface CachedX509Svid {
  entryId: string;
  spiffeId: string;
  /** Leaf first. */
  certificateChain: Buffer[];
  /** PKCS#8 DER of the private key, as the Workload API hands it out. */
  privateKeyPkcs8: Buffer;
  serial: string;
  notBefore: number;
  notAfter: number;
  /** When the agent renews it (ms since epoch): 45–55 % of the lifetime left. */
  renewAt: number;
  /** Authority key identifiers (lowercase hex) of every certificate in the chain, to spot a tainted root. */
  authorityKeyIds: string[];
  /** Entry revision the SVID was issued for: a changed entry gets a new SVID. */
  entryRevision: number;
}

export interface WorkloadIdentity {
  entry: RegistrationEntry;
  svid: CachedX509Svid | undefined;
}

/**
 * What the agent knows: the entries the server authorized for it, the SVIDs issued for them, and the
 * trust bundle. It is served to workloads whether or not the server is reachable, and emits `change`
 * whenever anything a Workload API stream shows has changed.
 */
export class SvidCache extends EventEmitter<{ change: [] }> {
  private entries = new Map<string, RegistrationEntry>();
  private readonly svids = new Map<string, CachedX509Svid>();
  private currentBundle: TrustBundle;

  constructor(bundle: TrustBundle) {
    super();
    this.setMaxListeners(0);
    this.currentBundle = bundle;
  }

  get bundle(): TrustBundle {
    return this.currentBundle;
  }

  get entryCount(): number {
    return this.entries.size;
  }

  get svidCount(): number {
    return this.svids.size;
  }

  setBundle(bundle: TrustBundle): boolean {
    if (
      bundle.sequenceNumber === this.currentBundle.sequenceNumber &&
      sameAuthorities(bundle, this.currentBundle)
    )
      return false;
    this.currentBundle = bundle;
    this.emit('change');
    return true;
  }

  /** Replaces the authorized entries; SVIDs of entries no longer authorized are dropped. */
  setEntries(entries: RegistrationEntry[]): void {
    const next = new Map(entries.map((e) => [e.id, e]));
    let changed = next.size !== this.entries.size;
    for (const [id, entry] of next) {
      const previous = this.entries.get(id);
      if (!previous || previous.revisionNumber !== entry.revisionNumber) changed = true;
    }
    for (const id of this.svids.keys()) {
      if (!next.has(id)) {
        this.svids.delete(id);
        changed = true;
      }
    }
    this.entries = next;
    if (changed) this.emit('change');
  }

  putSvids(svids: CachedX509Svid[]): void {
    if (svids.length === 0) return;
    for (const svid of svids) if (this.entries.has(svid.entryId)) this.svids.set(svid.entryId, svid);
    this.emit('change');
  }

  /** Entries that need a (new) SVID now: none yet, due for renewal, issued for an older revision, or chaining to a tainted authority. */
  entriesNeedingSvid(now: number): RegistrationEntry[] {
    const tainted = new Set(taintedAuthorityIds(this.currentBundle));
    const due: RegistrationEntry[] = [];
    for (const entry of this.entries.values()) {
      const svid = this.svids.get(entry.id);
      if (
        !svid ||
        now >= svid.renewAt ||
        svid.entryRevision !== entry.revisionNumber ||
        svid.authorityKeyIds.some((id) => tainted.has(id))
      ) {
        due.push(entry);
      }
    }
    return due;
  }

  /** The entries whose selectors the workload's selectors satisfy, with their SVIDs where issued. */
  identitiesFor(selectors: Selector[]): WorkloadIdentity[] {
    const identities: WorkloadIdentity[] = [];
    for (const entry of this.entries.values()) {
      if (selectorsMatch(entry.selectors, selectors))
        identities.push({ entry, svid: this.svids.get(entry.id) });
    }
    return identities;
  }

  svidFor(entryId: string): CachedX509Svid | undefined {
    return this.svids.get(entryId);
  }

  allSvids(): CachedX509Svid[] {
    return [...this.svids.values()];
  }
}

export function taintedAuthorityIds(bundle: TrustBundle): string[] {
  return bundle.x509Authorities.filter((a) => a.tainted).map((a) => authorityIdOf(a.der));
}

function sameAuthorities(a: TrustBundle, b: TrustBundle): boolean {
  const key = (t: TrustBundle) =>
    JSON.stringify([
      t.x509Authorities.map((x) => [x.der.toString('base64'), x.tainted]),
      t.jwtAuthorities.map((j) => [j.keyId, j.tainted]),
    ]);
  return key(a) === key(b);
}
