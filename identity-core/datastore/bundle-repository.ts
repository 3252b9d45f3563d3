import type { TrustBundle } from '../spiffe/trust-bundle.js';
import type { SqlClient } from './sql-client.js';

interface StoredBundle {
  trustDomain: string;
  x509Authorities: { der: string; tainted: boolean }[];
  jwtAuthorities: { keyId: string; publicKeySpki: string; expiresAt: number; tainted: boolean }[];
  refreshHint: number;
  sequenceNumber: number;
}

function encode(bundle: TrustBundle): StoredBundle {
  return {
    ...bundle,
    x509Authorities: bundle.x509Authorities.map((a) => ({
      der: a.der.toString('base64'),
      tainted: a.tainted,
    })),
    jwtAuthorities: bundle.jwtAuthorities.map((a) => ({
      ...a,
      publicKeySpki: a.publicKeySpki.toString('base64'),
    })),
  };
}

function decode(stored: StoredBundle): TrustBundle {
  return {
    ...stored,
    x509Authorities: stored.x509Authorities.map((a) => ({
      der: Buffer.from(a.der, 'base64'),
      tainted: a.tainted,
    })),
    jwtAuthorities: stored.jwtAuthorities.map((a) => ({
      ...a,
      publicKeySpki: Buffer.from(a.publicKeySpki, 'base64'),
    })),
  };
}

function parse(data: unknown): StoredBundle {
  return (typeof data === 'string' ? JSON.parse(data) : data) as StoredBundle;
}

/** Trust bundles, tainted flags and sequence numbers included. */
export class BundleRepository {
  constructor(private readonly sql: SqlClient) {}

  async get(trustDomain: string): Promise<TrustBundle | undefined> {
    const row = (
      await this.sql.query<{ data: unknown }>('SELECT data FROM bundles WHERE trust_domain = $1', [
        trustDomain,
      ])
    )[0];
    return row ? decode(parse(row.data)) : undefined;
  }

  async set(bundle: TrustBundle): Promise<void> {
    await this.sql.query(
      'INSERT INTO bundles (trust_domain, data) VALUES ($1, $2) ON CONFLICT (trust_domain) DO UPDATE SET data = EXCLUDED.data',
      [bundle.trustDomain, JSON.stringify(encode(bundle))],
    );
  }

  /** Read-modify-write under a row lock, so servers sharing a datastore never lose each other's changes. */
  async update(
    trustDomain: string,
    change: (current: TrustBundle | undefined) => TrustBundle,
  ): Promise<TrustBundle> {
    return this.sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bundle ${trustDomain}`]);
      const row = (
        await tx.query<{ data: unknown }>('SELECT data FROM bundles WHERE trust_domain = $1 FOR UPDATE', [
          trustDomain,
        ])
      )[0];
      const current = row ? decode(parse(row.data)) : undefined;
      const next = change(current);
      // A change that returns the bundle it was given changed nothing: no write.
      if (next === current) return next;
      await tx.query(
        'INSERT INTO bundles (trust_domain, data) VALUES ($1, $2) ON CONFLICT (trust_domain) DO UPDATE SET data = EXCLUDED.data',
        [trustDomain, JSON.stringify(encode(next))],
      );
      return next;
    });
  }
}
