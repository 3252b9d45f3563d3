import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import {
  agentService,
  bundleService,
  entryService,
  healthService,
  localAuthorityService,
  loggerService,
  packageDefinition,
  protoFiles,
  protoRoot,
  svidService,
  workloadService,
} from '../../identity-core/proto/services.js';

/** Field numbers as published in spire-api-sdk and go-spiffe (the wire contract). */
const sdkFieldNumbers: Record<string, Record<string, number>> = {
  'spire.api.types.Entry': {
    id: 1,
    spiffe_id: 2,
    parent_id: 3,
    selectors: 4,
    x509_svid_ttl: 5,
    federates_with: 6,
    admin: 7,
    downstream: 8,
    expires_at: 9,
    dns_names: 10,
    revision_number: 11,
    store_svid: 12,
    jwt_svid_ttl: 13,
    hint: 14,
    created_at: 15,
    additional_attributes: 16,
  },
  'spire.api.types.Agent': {
    id: 1,
    attestation_type: 2,
    x509svid_serial_number: 3,
    x509svid_expires_at: 4,
    selectors: 5,
    banned: 6,
    can_reattest: 7,
    agent_version: 8,
  },
  'spire.api.types.Bundle': {
    trust_domain: 1,
    x509_authorities: 2,
    jwt_authorities: 3,
    refresh_hint: 4,
    sequence_number: 5,
  },
  'spire.api.types.X509Certificate': { asn1: 1, tainted: 2 },
  'spire.api.types.JWTKey': { public_key: 1, key_id: 2, expires_at: 3, tainted: 4 },
  'spire.api.types.X509SVID': { cert_chain: 1, id: 2, expires_at: 3, hint: 4 },
  'spire.api.types.JWTSVID': { token: 1, id: 2, expires_at: 3, issued_at: 4, hint: 5 },
  'spire.api.types.Status': { code: 1, message: 2 },
  'spire.api.types.SPIFFEID': { trust_domain: 1, path: 2 },
  'spire.api.types.JoinToken': { value: 1, expires_at: 2 },
  'spire.api.server.agent.v1.AttestAgentRequest': { params: 1, challenge_response: 2 },
  'spire.api.server.agent.v1.AttestAgentRequest.Params': { data: 1, params: 2 },
  'spire.api.server.agent.v1.AttestAgentResponse': { result: 1, challenge: 2 },
  'spire.api.server.agent.v1.AttestAgentResponse.Result': { svid: 1, reattestable: 2 },
  'spire.api.server.agent.v1.CreateJoinTokenRequest': { ttl: 1, token: 2, agent_id: 3 },
  'spire.api.server.agent.v1.ListAgentsRequest': { filter: 1, output_mask: 2, page_size: 3, page_token: 4 },
  'spire.api.server.entry.v1.ListEntriesRequest.Filter': {
    by_spiffe_id: 1,
    by_parent_id: 2,
    by_selectors: 3,
    by_federates_with: 4,
    by_hint: 5,
    by_downstream: 6,
  },
  'spire.api.server.entry.v1.BatchCreateEntryResponse.Result': { status: 1, entry: 2 },
  'spire.api.server.svid.v1.NewX509SVIDParams': { entry_id: 1, csr: 2 },
  'spire.api.server.svid.v1.MintX509SVIDRequest': { csr: 1, ttl: 2 },
  'spire.api.server.svid.v1.MintJWTSVIDRequest': { id: 1, audience: 2, ttl: 3 },
  'spire.api.server.entry.v1.BatchUpdateEntryRequest': { entries: 1, input_mask: 2, output_mask: 3 },
  'spire.api.server.entry.v1.SyncAuthorizedEntriesRequest': { output_mask: 1, ids: 2 },
  'spire.api.server.entry.v1.SyncAuthorizedEntriesResponse': { entry_revisions: 1, entries: 2, more: 3 },
  'spire.api.server.entry.v1.EntryRevision': { id: 1, revision_number: 2, created_at: 3 },
  'spire.api.server.agent.v1.GetAgentRequest': { id: 1, output_mask: 2 },
  'spire.api.server.bundle.v1.ListFederatedBundlesRequest': { output_mask: 1, page_size: 2, page_token: 3 },
  'spire.api.types.Logger': { current_level: 1, launch_level: 2 },
  'spire.api.server.svid.v1.NewDownstreamX509CARequest': { csr: 1, preferred_ttl: 2 },
  'spire.api.server.svid.v1.NewDownstreamX509CAResponse': { ca_cert_chain: 1, x509_authorities: 2 },
  'spire.api.server.localauthority.v1.AuthorityState': {
    authority_id: 1,
    expires_at: 2,
    upstream_authority_subject_key_id: 3,
  },
  'spire.api.server.localauthority.v1.TaintX509UpstreamAuthorityRequest': { subject_key_id: 1 },
  X509SVID: { spiffe_id: 1, x509_svid: 2, x509_svid_key: 3, bundle: 4, hint: 5 },
  X509SVIDResponse: { svids: 1, crl: 2, federated_bundles: 3 },
  X509BundlesResponse: { crl: 1, bundles: 2 },
  JWTSVIDRequest: { audience: 1, spiffe_id: 2 },
  JWTSVID: { spiffe_id: 1, svid: 2, hint: 3 },
  JWTBundlesResponse: { bundles: 1 },
  ValidateJWTSVIDRequest: { audience: 1, svid: 2 },
  ValidateJWTSVIDResponse: { spiffe_id: 1, claims: 2 },
};

interface MessageDescriptor {
  field: { name: string; number: number }[];
  nestedType: (MessageDescriptor & { name: string })[];
}

/** Nested messages are not top-level in a package definition: descend from the enclosing one. */
function fieldsOf(messageName: string): MessageDescriptor['field'] {
  const parts = messageName.split('.');
  for (let split = parts.length; split > 0; split--) {
    const outer = packageDefinition[parts.slice(0, split).join('.')] as
      { type?: MessageDescriptor } | undefined;
    if (!outer?.type?.field) continue;
    let descriptor: MessageDescriptor | undefined = outer.type;
    for (const name of parts.slice(split)) descriptor = descriptor?.nestedType.find((n) => n.name === name);
    if (descriptor) return descriptor.field;
  }
  throw new Error(`message ${messageName} not loaded`);
}

/** Minimal protobuf wire reader: the top-level (field number, wire type, value) triples. */
function readWire(buffer: Buffer): { field: number; wireType: number; value: number | Buffer }[] {
  const out: { field: number; wireType: number; value: number | Buffer }[] = [];
  let offset = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = buffer[offset++];
      if (byte === undefined) throw new Error('truncated varint');
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (offset < buffer.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === 0) out.push({ field, wireType, value: varint() });
    else if (wireType === 2) {
      const length = varint();
      out.push({ field, wireType, value: buffer.subarray(offset, offset + length) });
      offset += length;
    } else throw new Error(`unexpected wire type ${wireType}`);
  }
  return out;
}

describe('proto services', () => {
  it('finds the .proto files under the package root', () => {
    const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    expect(protoRoot).toBe(join(repoRoot, 'identity-core', 'proto'));
    for (const file of protoFiles) expect(existsSync(join(protoRoot, file))).toBe(true);
  });

  it('loads every service with the SDK method paths and streaming shapes', () => {
    const shape = (service: grpc.ServiceDefinition) =>
      Object.values(service).map(
        (m) => `${m.path}${m.requestStream ? ' <in' : ''}${m.responseStream ? ' out>' : ''}`,
      );

    expect(shape(workloadService)).toEqual([
      '/SpiffeWorkloadAPI/FetchX509SVID out>',
      '/SpiffeWorkloadAPI/FetchX509Bundles out>',
      '/SpiffeWorkloadAPI/FetchJWTSVID',
      '/SpiffeWorkloadAPI/FetchJWTBundles out>',
      '/SpiffeWorkloadAPI/ValidateJWTSVID',
    ]);
    expect(shape(healthService)).toEqual([
      '/grpc.health.v1.Health/Check',
      '/grpc.health.v1.Health/Watch out>',
    ]);
    expect(shape(agentService)).toEqual([
      '/spire.api.server.agent.v1.Agent/CountAgents',
      '/spire.api.server.agent.v1.Agent/ListAgents',
      '/spire.api.server.agent.v1.Agent/GetAgent',
      '/spire.api.server.agent.v1.Agent/DeleteAgent',
      '/spire.api.server.agent.v1.Agent/BanAgent',
      '/spire.api.server.agent.v1.Agent/AttestAgent <in out>',
      '/spire.api.server.agent.v1.Agent/RenewAgent',
      '/spire.api.server.agent.v1.Agent/CreateJoinToken',
    ]);
    expect(shape(entryService)).toEqual(
      [
        'CountEntries',
        'ListEntries',
        'GetEntry',
        'BatchCreateEntry',
        'BatchUpdateEntry',
        'BatchDeleteEntry',
        'GetAuthorizedEntries',
        'SyncAuthorizedEntries <in out>',
      ].map((m) => `/spire.api.server.entry.v1.Entry/${m}`),
    );
    expect(shape(svidService)).toEqual(
      ['MintX509SVID', 'MintJWTSVID', 'BatchNewX509SVID', 'NewJWTSVID', 'NewDownstreamX509CA'].map(
        (m) => `/spire.api.server.svid.v1.SVID/${m}`,
      ),
    );
    expect(shape(bundleService)).toEqual(
      ['CountBundles', 'GetBundle', 'PublishJWTAuthority', 'ListFederatedBundles'].map(
        (m) => `/spire.api.server.bundle.v1.Bundle/${m}`,
      ),
    );
    expect(shape(loggerService)).toEqual(
      ['GetLogger', 'SetLogLevel', 'ResetLogLevel'].map((m) => `/spire.api.server.logger.v1.Logger/${m}`),
    );
    expect(Object.keys(localAuthorityService)).toEqual([
      'GetJWTAuthorityState',
      'PrepareJWTAuthority',
      'ActivateJWTAuthority',
      'TaintJWTAuthority',
      'RevokeJWTAuthority',
      'GetX509AuthorityState',
      'PrepareX509Authority',
      'ActivateX509Authority',
      'TaintX509Authority',
      'TaintX509UpstreamAuthority',
      'RevokeX509Authority',
      'RevokeX509UpstreamAuthority',
    ]);
  });

  it.each(Object.entries(sdkFieldNumbers))('%s has the SDK field numbers', (message, expected) => {
    // The loader camel-cases names (keepCase: false); numbers are what the wire sees.
    const camel = (name: string) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
    const actual = Object.fromEntries(fieldsOf(message).map((f) => [f.name, f.number]));
    expect(actual).toEqual(Object.fromEntries(Object.entries(expected).map(([k, v]) => [camel(k), v])));
  });

  it('round-trips an entry through the GetEntry serializers (camelCase, longs as numbers)', () => {
    const entry = {
      id: 'e1',
      spiffeId: { trustDomain: 'example.org', path: '/web' },
      parentId: { trustDomain: 'example.org', path: '/spire/agent/join_token/t' },
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      x509SvidTtl: 3600,
      jwtSvidTtl: 300,
      downstream: true,
      dnsNames: ['web.local'],
      revisionNumber: 7,
      expiresAt: 1_900_000_000,
      hint: 'internal',
    };
    const wire = entryService.GetEntry.responseSerialize(entry);
    const decoded = entryService.GetEntry.responseDeserialize(wire);
    expect(decoded).toMatchObject(entry);
    expect(decoded.admin).toBe(false);
    expect(decoded.federatesWith).toEqual([]);
    expect(decoded.additionalAttributes).toBeNull();
  });

  it('puts entry fields on the wire under the SDK tags', () => {
    const wire = readWire(
      entryService.GetEntry.responseSerialize({ id: 'x', jwtSvidTtl: 77, x509SvidTtl: 55, downstream: true }),
    );
    expect(wire).toContainEqual({ field: 13, wireType: 0, value: 77 });
    expect(wire).toContainEqual({ field: 5, wireType: 0, value: 55 });
    expect(wire).toContainEqual({ field: 8, wireType: 0, value: 1 });
  });

  it('carries the tainted flag of an X.509 authority in the bundle', () => {
    const der = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]);
    const wire = bundleService.GetBundle.responseSerialize({
      trustDomain: 'example.org',
      x509Authorities: [{ asn1: der, tainted: true }],
      sequenceNumber: 3,
    });
    const top = readWire(wire);
    expect(top).toContainEqual({ field: 5, wireType: 0, value: 3 });
    const authority = top.find((f) => f.field === 2);
    expect(authority?.value).toBeInstanceOf(Buffer);
    const inner = readWire(authority!.value as Buffer);
    expect(inner).toEqual([
      { field: 1, wireType: 2, value: der },
      { field: 2, wireType: 0, value: 1 },
    ]);
    const decoded = bundleService.GetBundle.responseDeserialize(wire);
    expect(decoded.x509Authorities[0]?.tainted).toBe(true);
    expect(Buffer.isBuffer(decoded.x509Authorities[0]?.asn1)).toBe(true);
  });

  it('round-trips the attestation oneof and the workload X509 response map', () => {
    const request = { params: { data: { type: 'join_token', payload: Buffer.from('tok') } } };
    const decoded = agentService.AttestAgent.requestDeserialize(
      agentService.AttestAgent.requestSerialize(request),
    );
    expect(decoded.step).toBe('params');
    expect(decoded.params?.data?.type).toBe('join_token');
    expect(decoded.params?.data?.payload.toString()).toBe('tok');

    const response = {
      svids: [
        { spiffeId: 'spiffe://example.org/w', x509Svid: Buffer.from([1]), x509SvidKey: Buffer.from([2]) },
      ],
      federatedBundles: { 'spiffe://other.org': Buffer.from([3]) },
    };
    const x509 = workloadService.FetchX509SVID.responseDeserialize(
      workloadService.FetchX509SVID.responseSerialize(response),
    );
    expect(x509.svids[0]?.spiffeId).toBe('spiffe://example.org/w');
    expect(x509.federatedBundles['spiffe://other.org']).toEqual(Buffer.from([3]));
  });

  it('decodes JWT claims as a google.protobuf.Struct', () => {
    const wire = workloadService.ValidateJWTSVID.responseSerialize({
      spiffeId: 'spiffe://example.org/w',
      claims: { fields: { sub: { stringValue: 'spiffe://example.org/w' }, exp: { numberValue: 42 } } },
    });
    const decoded = workloadService.ValidateJWTSVID.responseDeserialize(wire);
    expect(decoded.claims?.fields['exp']).toMatchObject({ numberValue: 42, kind: 'numberValue' });
  });

  it('encodes health statuses as the standard enum numbers', () => {
    const wire = healthService.Check.responseSerialize({ status: 'NOT_SERVING' });
    expect(readWire(wire)).toEqual([{ field: 1, wireType: 0, value: 2 }]);
  });
});
