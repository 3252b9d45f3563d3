/**
 * The two records real SPIRE (v1.13.3) keeps as protobuf in its SQL datastore, read into what an
 * inventory needs: a bundle (`bundles.data`, spire.common.Bundle) and a server's CA journal
 * (`ca_journals.data`, the journal's Entries). Field numbers are those of SPIRE's proto files.
 */
import { bytesOf, intOf, textOf, wireFields } from './protobuf-wire.js';

export interface SpireBundleRecord {
  /** DER of each root, and whether SPIRE marked its key tainted. */
  roots: { der: Buffer; tainted: boolean }[];
  jwtKeys: { keyId: string; tainted: boolean }[];
}

/** spire.common.Bundle: root_cas = 2 (Certificate: der_bytes = 1, tainted_key = 2), jwt_signing_keys = 3 (PublicKey: kid = 2, tainted_key = 4). */
export function readSpireBundle(data: Buffer): SpireBundleRecord {
  const bundle = wireFields(data);
  return {
    roots: bytesOf(bundle, 2).map((cert) => {
      const fields = wireFields(cert);
      return { der: bytesOf(fields, 1)[0] ?? Buffer.alloc(0), tainted: intOf(fields, 2) !== 0n };
    }),
    jwtKeys: bytesOf(bundle, 3).map((key) => {
      const fields = wireFields(key);
      return { keyId: textOf(fields, 2), tainted: intOf(fields, 4) !== 0n };
    }),
  };
}

const STATUS: Record<string, 'PREPARED' | 'ACTIVE' | 'OLD'> = { '2': 'PREPARED', '3': 'ACTIVE', '4': 'OLD' };

export interface SpireJournalAuthority {
  kind: 'x509' | 'jwt';
  /** The X.509 CA's authority id (its SKI, hex) or the JWT key's id. */
  id: string;
  status: 'PREPARED' | 'ACTIVE' | 'OLD';
}

/**
 * Entries: x509CAs = 1 (X509CAEntry: status = 5, authority_id = 6), jwtKeys = 2 (JWTKeyEntry:
 * kid = 4, status = 6, authority_id = 7).
 */
export function readSpireJournal(data: Buffer): SpireJournalAuthority[] {
  const entries = wireFields(data);
  const status = (value: bigint) => STATUS[value.toString()];
  const authorities: (Omit<SpireJournalAuthority, 'status'> & {
    status: SpireJournalAuthority['status'] | undefined;
  })[] = [
    ...bytesOf(entries, 1).map((entry) => {
      const fields = wireFields(entry);
      return { kind: 'x509' as const, id: textOf(fields, 6), status: status(intOf(fields, 5)) };
    }),
    ...bytesOf(entries, 2).map((entry) => {
      const fields = wireFields(entry);
      return {
        kind: 'jwt' as const,
        id: textOf(fields, 7) || textOf(fields, 4),
        status: status(intOf(fields, 6)),
      };
    }),
  ];
  // SPIRE never journals an authority without a status (UNKNOWN): such a row says nothing.
  return authorities.flatMap((a) => (a.status ? [{ ...a, status: a.status }] : []));
}
