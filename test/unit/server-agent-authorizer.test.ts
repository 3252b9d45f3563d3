import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AttestedNode } from '../../identity-core/datastore/records.js';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { AgentAuthorizer, decimalSerial } from '../../identity-core/server/agent-authorizer.js';
import type { TrustBundle } from '../../identity-core/spiffe/trust-bundle.js';
import { expectRpc, FakeAttestedNodes } from '../support/fake-attested-nodes.js';
import { bundleOfRoots } from '../support/trust-bundle.js';

const AGENT = 'spiffe://example.org/spire/agent/join_token/abc';
const logger = pino({ level: 'silent' });

describe('AgentAuthorizer', () => {
  let minter: X509SvidMinter;
  let bundle: TrustBundle;
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    format: 'der',
    type: 'spki',
  });
  const nodes = new FakeAttestedNodes();
  let authorizer: AgentAuthorizer;
  const svid = (spiffeId = AGENT, now = Date.now()) =>
    minter.mint({ spiffeId, publicKeySpki: spki, ttlSeconds: 60, now }).der;
  const node = (serial: string, extra: Partial<AttestedNode> = {}): AttestedNode => ({
    spiffeId: AGENT,
    attestationType: 'join_token',
    certSerialNumber: serial,
    certNotAfter: 0,
    newCertSerialNumber: '',
    newCertNotAfter: 0,
    canReattest: false,
    selectors: [],
    ...extra,
  });

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // Issued an hour ago, so the SVIDs backdated below still chain to a CA valid at their time.
    const ca = await createSelfSignedCa({
      trustDomain: 'example.org',
      privateKey,
      ttlSeconds: 7200,
      now: Date.now() - 3_600_000,
    });
    minter = new X509SvidMinter({ der: ca.der, privateKey });
    bundle = bundleOfRoots([ca.der]);
    authorizer = new AgentAuthorizer('example.org', nodes, async () => bundle, logger);
  });

  it('admits an attested agent whose serial matches', async () => {
    const cert = svid();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    expect((await authorizer.authorize({ kind: 'tls', certificateChain: [cert] })).agentId).toBe(AGENT);
  });

  it('activates a renewed SVID on first use', async () => {
    const cert = svid();
    const serial = decimalSerial(new X509Certificate(cert));
    nodes.nodes.set(AGENT, node('1', { newCertSerialNumber: serial, newCertNotAfter: 99 }));
    await authorizer.authorize({ kind: 'tls', certificateChain: [cert] });
    expect(nodes.nodes.get(AGENT)).toMatchObject({
      certSerialNumber: serial,
      certNotAfter: 99,
      newCertSerialNumber: '',
    });
  });

  it('refuses an expired agent SVID', async () => {
    const cert = svid(AGENT, Date.now() - 120_000);
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }),
      grpc.status.PERMISSION_DENIED,
      /SVID is expired/,
    );
  });

  it('refuses an agent that is not attested, banned, or presenting an old serial', async () => {
    const cert = svid();
    nodes.nodes.delete(AGENT);
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }),
      grpc.status.PERMISSION_DENIED,
      /is not attested/,
    );
    nodes.nodes.set(AGENT, node(''));
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }),
      grpc.status.PERMISSION_DENIED,
      /is banned/,
    );
    nodes.nodes.set(AGENT, node('12345'));
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [cert] }),
      grpc.status.PERMISSION_DENIED,
      /expected to have serial number "12345"/,
    );
  });

  it('refuses workload SVIDs, foreign chains and missing certificates', async () => {
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [svid('spiffe://example.org/workload')] }),
      grpc.status.UNAUTHENTICATED,
      /not an agent/,
    );
    await expectRpc(
      authorizer.authorize({ kind: 'tls', certificateChain: [] }),
      grpc.status.UNAUTHENTICATED,
      /no client certificate/,
    );
    await expectRpc(authorizer.authorize(undefined), grpc.status.UNAUTHENTICATED, /no client certificate/);
  });

  it('fails with Internal when the datastore cannot be reached, as SPIRE does', async () => {
    nodes.down = true;
    try {
      await expectRpc(
        authorizer.authorize({ kind: 'tls', certificateChain: [svid()] }),
        grpc.status.INTERNAL,
        /unable to look up agent information: connect ECONNREFUSED/,
      );
    } finally {
      nodes.down = false;
    }
  });

  it('re-verifies a connection once the bundle changes: a removed root ends its calls', async () => {
    const cert = svid();
    nodes.nodes.set(AGENT, node(decimalSerial(new X509Certificate(cert))));
    const peer = { kind: 'tls' as const, certificateChain: [cert] };
    await expect(authorizer.authorize(peer)).resolves.toMatchObject({ agentId: AGENT });
    const before = bundle;
    bundle = { ...bundle, x509Authorities: [], sequenceNumber: bundle.sequenceNumber + 1 };
    try {
      await expectRpc(authorizer.authorize(peer), grpc.status.UNAUTHENTICATED, /unknown authority/);
    } finally {
      bundle = before;
    }
  });
});
