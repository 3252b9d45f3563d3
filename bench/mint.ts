import { generateKeyPairSync } from 'node:crypto';
import { newKeyAndCsr } from '../identity-core/agent/workload-key.js';
import { nativeP256Verify, parseCsr } from '../identity-core/pki/csr.js';
import { X509SvidMinter } from '../identity-core/pki/svid-minter.js';
import { createSelfSignedCa } from '../identity-core/pki/x509-ca.js';

/**
 * In-process X509-SVID minting on one core, as the server does it per BatchNewX509SVID parameter:
 * parse and verify the CSR, then mint and sign the SVID. Prints one JSON line.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const DISTINCT_CSRS = 200;

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ca = await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 24 * 3600 });
const minter = new X509SvidMinter({ der: ca.der, privateKey });
const csrs = await Promise.all(
  Array.from({ length: DISTINCT_CSRS }, () => newKeyAndCsr().then((k) => k.csr)),
);

function round(): void {
  const csr = parseCsr(csrs[count % DISTINCT_CSRS]!);
  minter.mint({
    spiffeId: `spiffe://example.org/bench/workload-${count % 1000}`,
    publicKeySpki: csr.publicKeySpki,
    ttlSeconds: 3600,
  });
  count++;
}

let count = 0;
const warmupEnd = performance.now() + 500;
while (performance.now() < warmupEnd) round();
count = 0;
const started = performance.now();
const end = started + SECONDS * 1000;
while (performance.now() < end) round();
const elapsed = (performance.now() - started) / 1000;

console.log(
  JSON.stringify({
    bench: 'mint',
    svids_per_s: Math.round(count / elapsed),
    csr_verify: true,
    csr_verify_native: nativeP256Verify,
    svids: count,
    seconds: Number(elapsed.toFixed(2)),
    key: 'ec-p256',
    node: process.version,
  }),
);
