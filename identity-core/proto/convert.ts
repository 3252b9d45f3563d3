/**
 * Between the wire types of SPIRE's API (generated from the .proto files) and the records the
 * server, agent and datastore work with. One place, so the two shapes never drift.
 */
import type { RegistrationEntry } from '../datastore/records.js';
import type { TrustBundle } from '../spiffe/trust-bundle.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import type { Entry, Entry__Output } from './gen/spire/api/types/Entry.js';
import type { SPIFFEID, SPIFFEID__Output } from './gen/spire/api/types/SPIFFEID.js';
import type { Bundle, Bundle__Output } from './gen/spire/api/types/Bundle.js';

export function spiffeIdToProto(id: string): SPIFFEID {
  const parsed = SpiffeId.parse(id);
  return { trustDomain: parsed.trustDomain, path: parsed.path };
}

/** Throws SpiffeIdError when the parts do not make a valid SPIFFE ID. */
export function spiffeIdFromProto(id: SPIFFEID__Output | null | undefined, field: string): string {
  if (!id || (id.trustDomain === '' && id.path === '')) throw new Error(`${field} is required`);
  return SpiffeId.fromParts(id.trustDomain, id.path).toString();
}

export function entryToProto(entry: RegistrationEntry): Entry {
  return {
    id: entry.id,
    spiffeId: spiffeIdToProto(entry.spiffeId),
    parentId: spiffeIdToProto(entry.parentId),
    selectors: entry.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: entry.x509SvidTtl,
    jwtSvidTtl: entry.jwtSvidTtl,
    admin: entry.admin,
    downstream: entry.downstream,
    expiresAt: entry.expiresAt,
    dnsNames: entry.dnsNames,
    revisionNumber: entry.revisionNumber,
    hint: entry.hint,
    createdAt: entry.createdAt,
  };
}

/** An entry as received from a trusted server (the agent side); the server validates requests separately. */
export function entryFromProto(entry: Entry__Output): RegistrationEntry {
  return {
    id: entry.id,
    spiffeId: spiffeIdFromProto(entry.spiffeId, 'spiffe_id'),
    parentId: spiffeIdFromProto(entry.parentId, 'parent_id'),
    selectors: entry.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: entry.x509SvidTtl,
    jwtSvidTtl: entry.jwtSvidTtl,
    admin: entry.admin,
    downstream: entry.downstream,
    dnsNames: entry.dnsNames,
    hint: entry.hint,
    expiresAt: entry.expiresAt,
    createdAt: entry.createdAt,
    revisionNumber: entry.revisionNumber,
  };
}

export function bundleToProto(bundle: TrustBundle): Bundle {
  return {
    trustDomain: bundle.trustDomain,
    x509Authorities: bundle.x509Authorities.map((a) => ({ asn1: a.der, tainted: a.tainted })),
    jwtAuthorities: bundle.jwtAuthorities.map((k) => ({
      publicKey: k.publicKeySpki,
      keyId: k.keyId,
      expiresAt: k.expiresAt,
      tainted: k.tainted,
    })),
    refreshHint: bundle.refreshHint,
    sequenceNumber: bundle.sequenceNumber,
  };
}

export function bundleFromProto(bundle: Bundle__Output): TrustBundle {
  return {
    trustDomain: bundle.trustDomain,
    x509Authorities: bundle.x509Authorities.map((a) => ({ der: Buffer.from(a.asn1), tainted: a.tainted })),
    jwtAuthorities: bundle.jwtAuthorities.map((k) => ({
      keyId: k.keyId,
      publicKeySpki: Buffer.from(k.publicKey),
      expiresAt: k.expiresAt,
      tainted: k.tainted,
    })),
    refreshHint: bundle.refreshHint,
    sequenceNumber: bundle.sequenceNumber,
  };
}
