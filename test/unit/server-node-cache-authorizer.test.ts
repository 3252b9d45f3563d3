import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AttestedNode } from '../../identity-core/datastore/records.js';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { AgentAuthorizer, decimalSerial } from '../../identity-core/server/agent-authorizer.js';
import { AttestedNodeCache } from '../../identity-core/server/attested-node-cache.js';
import type { TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';
import { expectRpc, FakeAttestedNodes } from '../support/fake-attested-nodes.js';
import { bundleOfRoots } from '../support/trust-bundle.js';

/**
 * max_attested_node_info_staleness as SPIRE v1.13.3's AgentAuthorizer applies it: a cached node younger
 * than the window with the caller's serial authorizes without the datastore; anything else reads it.
 */
const AGENT = 'spiffe://example.org/spire/agent/join_token/abc';
const STALENESS_MS = 30_000;
const logger = pino({ level: 'silent' });

describe('AgentAuthorizer with an attested node cache (max_attested_node_info_staleness)', () => {
  let minter: X509SvidMinter;
  let bundle: TrustBundle;
  let bundleDown = false;
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    format: 'der',
    type: 'spki',
  });
  let nodes: FakeAttestedNodes;
  let cache: AttestedNodeCache;
  let clock: number;
  let hits: number;
  let authorizer: AgentAuthorizer;
  const mint = () => minter.mint({ spiffeId: AGENT, publicKeySpki: spki, ttlSeconds: 600 }).der;
  const node = (serial: string): AttestedNode => ({
    spiffeId: AGENT,
    attestationType: 'join_token',
    certSerialNumber: serial,
    certNotAfter: Math.floor(Date.now() / 1000) + 600,
    newCertSerialNumber: '',
    newCertNotAfter: 0,
    canReattest: false,
    selectors: [],
  });

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ca = await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 7200 });
    minter = new X509SvidMinter({ der: ca.der, privateKey });
    bundle = bundleOfRoots([ca.der]);
  });

  beforeEach(() => {
    nodes = new FakeAttestedNodes();
    clock = Date.now();
    hits = 0;
    bundleDown = false;
    cache = new AttestedNodeCache(
      nodes,
      () => {},
      () => clock,
    );
    authorizer = new AgentAuthorizer(
      'example.org',
      nodes,
      async () => {
        if (bundleDown) throw new Error('datastore unavailable');
        return bundle;
      },
      logger,
      { cache, stalenessMs: STALENESS_MS, onCacheHit: () => hits++ },
    );
  });

  it('authorizes from a fresh cached node without reading the datastore', async () => {
    const cert = mint();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    await cache.rebuild();
    nodes.down = true;
    const reads = nodes.reads;
    await expect(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }, clock + STALENESS_MS - 1),
    ).resolves.toMatchObject({ agentId: AGENT });
    expect(nodes.reads).toBe(reads);
    expect(hits).toBe(1);
  });

  it('reads the datastore once the cached node is older than the window, and fails when it is down', async () => {
    const cert = mint();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    await cache.rebuild();
    const later = clock + STALENESS_MS;
    await expect(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }, later),
    ).resolves.toMatchObject({ agentId: AGENT });
    expect(hits).toBe(0);
    nodes.down = true;
    clock += 2 * STALENESS_MS;
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }, clock + STALENESS_MS),
      grpc.status.INTERNAL,
      /unable to look up agent information/,
    );
    // As SPIRE's node cache, a failed lookup forgets the node: it no longer authorizes even within the window.
    expect(cache.lookup(AGENT)).toBeUndefined();
  });

  it("reads the datastore when the cached serial is not the caller's (a renewed SVID)", async () => {
    const old = mint();
    const renewed = mint();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(old))));
    await cache.rebuild();
    nodes.nodes.set(AGENT, {
      ...node(decimalSerial(new X509Certificate(old))),
      newCertSerialNumber: decimalSerial(new X509Certificate(renewed)),
    });
    const reads = nodes.reads;
    await expect(
      authorizer.authorize({ kind: 'tls', certificateChain: [renewed] }, clock),
    ).resolves.toMatchObject({
      agentId: AGENT,
    });
    expect(nodes.reads).toBe(reads + 1);
    expect(hits).toBe(0);
    expect(nodes.nodes.get(AGENT)!.certSerialNumber).toBe(decimalSerial(new X509Certificate(renewed)));
  });

  it('does not take a banned node from the cache', async () => {
    const cert = mint();
    nodes.nodes.set(AGENT, node(''));
    await cache.rebuild();
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }, clock),
      grpc.status.PERMISSION_DENIED,
      /is banned/,
    );
    expect(hits).toBe(0);
  });

  it('with the datastore down: a verified connection is authorized from the cache, a new one is refused', async () => {
    const cert = mint();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    await cache.rebuild();
    const verified = { kind: 'tls' as const, certificateChain: [cert] };
    await authorizer.authorize(verified, clock);
    nodes.down = true;
    bundleDown = true;
    // A failed rebuild keeps the nodes it had.
    await expect(cache.rebuild()).rejects.toThrow(/ECONNREFUSED/);
    await expect(authorizer.authorize(verified, clock + 1000)).resolves.toMatchObject({ agentId: AGENT });
    expect(hits).toBe(2);
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }, clock + 1000),
      grpc.status.INTERNAL,
      /failed to fetch bundle: datastore unavailable/,
    );
  });

  it('rebuilds only nodes whose SVID is still valid', async () => {
    nodes.nodes.set(AGENT, { ...node('1'), certNotAfter: Math.floor(clock / 1000) - 1 });
    await cache.rebuild();
    expect(cache.lookup(AGENT)).toBeUndefined();
  });
});
