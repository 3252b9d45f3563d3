import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { DownstreamAuthorizer } from '../../identity-core/server/downstream-authorizer.js';
import type { TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';
import { bundleOfRoots } from '../support/trust-bundle.js';

const DOWNSTREAM = 'spiffe://example.org/east/server';

/**
 * A downstream server's SVID is judged at its connection's TLS handshake, as SPIRE's server does: real
 * SPIRE's downstream keeps one connection to its upstream for as long as it lives and presents the SVID
 * it renewed only to new connections, so a call after the first SVID's expiry must still be served.
 */
describe('DownstreamAuthorizer', () => {
  let svid: Buffer;
  let notAfter: number;
  let authorizer: DownstreamAuthorizer;
  let bundle: TrustBundle;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ca = await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 7200 });
    const minter = new X509SvidMinter({ der: ca.der, privateKey });
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'der',
      type: 'spki',
    });
    const minted = minter.mint({ spiffeId: DOWNSTREAM, publicKeySpki: spki, ttlSeconds: 20 });
    svid = minted.der;
    notAfter = minted.notAfter * 1000;
    bundle = bundleOfRoots([ca.der]);
    authorizer = new DownstreamAuthorizer(
      'example.org',
      (id) => id === DOWNSTREAM,
      () => Promise.resolve(bundle),
    );
  });

  it('serves a connection whose SVID was valid at its handshake, after the SVID expired', async () => {
    const peer = { kind: 'tls' as const, certificateChain: [svid], handshakeAt: notAfter - 5_000 };
    await expect(authorizer.authorize(peer, notAfter + 60_000)).resolves.toBe(DOWNSTREAM);
  });

  it('refuses an SVID already expired at the handshake', async () => {
    const peer = { kind: 'tls' as const, certificateChain: [svid], handshakeAt: notAfter + 1_000 };
    await expect(authorizer.authorize(peer, notAfter + 1_000)).rejects.toThrow(/caller SVID is not valid/);
    // Without a handshake time, the call's own time is the one judged.
    await expect(
      authorizer.authorize({ kind: 'tls', certificateChain: [svid] }, notAfter + 1_000),
    ).rejects.toThrow(/caller SVID is not valid/);
  });

  it('keeps serving a verified connection after the root its SVID chains to left the bundle', async () => {
    const peer = { kind: 'tls' as const, certificateChain: [svid], handshakeAt: notAfter - 5_000 };
    await expect(authorizer.authorize(peer, notAfter - 4_000)).resolves.toBe(DOWNSTREAM);
    const trusted = bundle;
    bundle = { ...bundle, x509Authorities: [], sequenceNumber: 2 };
    try {
      await expect(authorizer.authorize(peer, notAfter - 3_000)).resolves.toBe(DOWNSTREAM);
      // A new connection presenting it is refused.
      const fresh = { kind: 'tls' as const, certificateChain: [svid], handshakeAt: notAfter - 3_000 };
      await expect(authorizer.authorize(fresh, notAfter - 3_000)).rejects.toThrow(/caller SVID is not valid/);
    } finally {
      bundle = trusted;
    }
  });
});
