import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack, runCommand } from '../../deployment/stack/identity-stack.js';
import { binPath } from '../../deployment/implementation/tspire.js';
import { AdminApi } from '../../identity-core/client/admin-api.js';
import { unary } from '../../identity-core/client/grpc-call.js';
import { attestWithJoinToken } from '../../identity-core/agent/node-attestation.js';
import {
  ServerConnection,
  call,
  type ServerClients,
} from '../../identity-core/transport/server-connection.js';
import { agentIdentityFrom, identityPem } from '../../identity-core/agent/synchronizer.js';
import { newKeyAndCsr } from '../../identity-core/agent/workload-key.js';
import { parsePemCertificates } from '../../identity-core/spiffe/pem.js';
import { workloadMetadata } from '../../identity-core/proto/services.js';
import type { Entry__Output } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import type { ListEntriesResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/ListEntriesResponse.js';
import type { ListAgentsResponse__Output } from '../../identity-core/proto/gen/spire/api/server/agent/v1/ListAgentsResponse.js';
import type { BatchNewX509SVIDResponse__Output } from '../../identity-core/proto/gen/spire/api/server/svid/v1/BatchNewX509SVIDResponse.js';
import type { BatchCreateEntryResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { BatchDeleteEntryResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/BatchDeleteEntryResponse.js';
import { makeRunDir } from '../support/run-dir.js';
import { untilPast, waitFor } from '../support/waits.js';
import { workloadClient } from '../support/workload-client.js';

/**
 * Hostile input at every surface of the bundled SPIRE: each gets the right status or CLI error with
 * a clear message, the processes keep serving, and the datastore is left as it was.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const TD = 'example.org';
const NODE = `spiffe://${TD}/bad-input/node`;
const WORKLOAD = `spiffe://${TD}/bad-input/workload`;
const OTHER = `spiffe://${TD}/bad-input/not-mine`;

function expectStatus(error: unknown, code: grpc.status, message: RegExp): void {
  expect(error, 'call should have failed').toBeInstanceOf(Error);
  const e = error as grpc.ServiceError;
  expect(grpc.status[e.code], e.details).toBe(grpc.status[code]);
  expect(e.details).toMatch(message);
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return undefined;
}

async function csrWithUriSan(uri: string): Promise<Buffer> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: algorithm,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])],
  });
  return Buffer.from(csr.rawData);
}

describe('bad input', () => {
  const run = makeRunDir('sdb-');
  let stack: IdentityStack;
  let admin: AdminApi;
  let roots: Buffer[];
  let agentClients: ServerClients;
  let entries: Record<string, Entry__Output>;
  let testAgentId: string;
  const connections: ServerConnection[] = [];

  const listEntries = () => unary<ListEntriesResponse__Output>((done) => admin.entry().ListEntries({}, done));
  const listAgents = () => unary<ListAgentsResponse__Output>((done) => admin.agent().ListAgents({}, done));
  const snapshot = async () => JSON.stringify([(await listEntries()).entries, (await listAgents()).agents]);

  beforeAll(async () => {
    stack = await IdentityStack.create({ runDir: run.dir, syncInterval: '1s' });
    await stack.startServer();
    admin = new AdminApi(stack.serverSocket);
    await stack.writeBootstrapBundle();
    roots = parsePemCertificates((await runCommand('cat', [stack.bundlePath])).stdout);

    // A test-held agent identity, attested like tspire-agent does, to call the agent API directly.
    const token = await stack.generateToken(NODE);
    const connection = new ServerConnection(`127.0.0.1:${stack.serverPort}`, TD);
    connections.push(connection);
    const attested = await attestWithJoinToken(connection, roots, token);
    testAgentId = attested.spiffeId;
    const identity = agentIdentityFrom(
      attested.spiffeId,
      attested.certificateChain,
      attested.privateKeyPkcs8,
    );
    agentClients = connection.clients(roots, identityPem(identity));

    const uid = String(process.getuid!());
    const created = await unary<BatchCreateEntryResponse__Output>((done) =>
      admin.entry().BatchCreateEntry(
        {
          entries: [
            {
              spiffeId: { trustDomain: TD, path: '/bad-input/workload' },
              parentId: { trustDomain: TD, path: '/bad-input/node' },
              selectors: [{ type: 'unix', value: `uid:${uid}` }],
            },
            {
              spiffeId: { trustDomain: TD, path: '/bad-input/not-mine' },
              parentId: { trustDomain: TD, path: '/elsewhere' },
              selectors: [{ type: 'unix', value: 'uid:4242' }],
            },
            // This process's identity under the tspire-agent process, for the Workload API cases.
            {
              spiffeId: { trustDomain: TD, path: '/bad-input/test-process' },
              parentId: { trustDomain: TD, path: '/bad-input/agent-node' },
              selectors: [{ type: 'unix', value: `uid:${uid}` }],
            },
          ],
        },
        done,
      ),
    );
    entries = Object.fromEntries(
      created.results.map((r) => [`spiffe://${TD}${r.entry!.spiffeId!.path}`, r.entry!]),
    );
    expect(Object.keys(entries)).toEqual([WORKLOAD, OTHER, `spiffe://${TD}/bad-input/test-process`]);
    const agentToken = await stack.generateToken(`spiffe://${TD}/bad-input/agent-node`);
    await stack.startAgent(agentToken);
  });

  afterAll(async () => {
    for (const c of connections) c.close();
    admin?.close();
    await stack?.stop();
    run.remove();
  });

  describe('leaves the datastore unchanged', () => {
    let before: string;
    beforeAll(async () => {
      before = await snapshot();
    });
    afterAll(async () => {
      expect(await snapshot()).toBe(before);
      expect((await stack.serverCli(['healthcheck'])).code).toBe(0);
      expect(stack.server!.isRunning()).toBe(true);
      expect(stack.agent!.isRunning()).toBe(true);
    });

    const batch = (entryId: string, csr: Buffer) =>
      call<BatchNewX509SVIDResponse__Output>((o, done) =>
        agentClients.svid.BatchNewX509SVID({ params: [{ entryId, csr }] }, o, done),
      );

    it('rejects a malformed CSR', async () => {
      const response = await batch(entries[WORKLOAD]!.id, randomBytes(200));
      expect(response.results[0]!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(response.results[0]!.status!.message).toMatch(/malformed CSR/);
    });

    it('rejects an oversized CSR', async () => {
      const { csr } = await newKeyAndCsr();
      const response = await batch(entries[WORKLOAD]!.id, Buffer.concat([csr, randomBytes(9000)]));
      expect(response.results[0]!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
    });

    it('rejects a CSR whose signature does not match its key', async () => {
      const { csr } = await newKeyAndCsr();
      const tampered = Buffer.from(csr);
      tampered[tampered.length - 5]! ^= 0xff;
      const response = await batch(entries[WORKLOAD]!.id, tampered);
      expect(response.results[0]!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(response.results[0]!.status!.message).toMatch(/CSR/);
    });

    it('rejects a CSR that names a SPIFFE ID other than the entry', async () => {
      const response = await batch(entries[WORKLOAD]!.id, await csrWithUriSan(OTHER));
      expect(response.results[0]!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(response.results[0]!.status!.message).toMatch(/does not match/);
    });

    it('refuses SVIDs for entries not parented to the calling agent', async () => {
      const { csr } = await newKeyAndCsr();
      const response = await batch(entries[OTHER]!.id, csr);
      expect(response.results[0]!.status!.code).toBe(grpc.status.NOT_FOUND);
      expect(response.results[0]!.status!.message).toBe('entry not found or not authorized');
    });

    it('refuses a client certificate from an untrusted CA and a caller without one', async () => {
      const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
      const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
        'sign',
        'verify',
      ])) as webcrypto.CryptoKeyPair;
      const forged = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: 'O=Forger',
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3_600_000),
        keys,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.SubjectAlternativeNameExtension([
            { type: 'url', value: `spiffe://${TD}/spire/agent/join_token/forged` },
          ]),
        ],
      });
      const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
      const forgedIdentity = agentIdentityFrom(
        `spiffe://${TD}/spire/agent/join_token/forged`,
        [Buffer.from(forged.rawData)],
        pkcs8,
      );
      const connection = new ServerConnection(`127.0.0.1:${stack.serverPort}`, TD);
      connections.push(connection);
      const forgedClients = connection.clients(roots, identityPem(forgedIdentity));
      expectStatus(
        await failure(call((o, done) => forgedClients.entry.GetAuthorizedEntries({}, o, done))),
        grpc.status.UNAUTHENTICATED,
        /not an agent of this trust domain/,
      );
      const anonymous = new ServerConnection(`127.0.0.1:${stack.serverPort}`, TD);
      connections.push(anonymous);
      const anonymousClients = anonymous.clients(roots, undefined);
      expectStatus(
        await failure(call((o, done) => anonymousClients.entry.GetAuthorizedEntries({}, o, done))),
        grpc.status.UNAUTHENTICATED,
        /no client certificate/,
      );
    });

    it('keeps admin methods off the agent port', async () => {
      expectStatus(
        await failure(call((o, done) => agentClients.entry.BatchCreateEntry({ entries: [] }, o, done))),
        grpc.status.PERMISSION_DENIED,
        /local socket only/,
      );
    });

    it('rejects a reused join token and a token that does not exist', async () => {
      const connection = new ServerConnection(`127.0.0.1:${stack.serverPort}`, TD);
      connections.push(connection);
      const token = await stack.generateToken(`spiffe://${TD}/bad-input/once`);
      await attestWithJoinToken(connection, roots, token);
      expectStatus(
        await failure(attestWithJoinToken(connection, roots, token)),
        grpc.status.PERMISSION_DENIED,
        /does not exist or has already been used/,
      );
      expectStatus(
        await failure(attestWithJoinToken(connection, roots, 'no-such-token')),
        grpc.status.PERMISSION_DENIED,
        /does not exist/,
      );
      // The attestation above did add a node and an alias entry: leave the snapshot as it was.
      const removed = await stack.serverCli([
        'agent',
        'evict',
        '-spiffeID',
        `spiffe://${TD}/spire/agent/join_token/${token}`,
      ]);
      expect(removed.code, removed.stderr).toBe(0);
      const alias = (await listEntries()).entries.find((e) => e.spiffeId?.path === '/bad-input/once');
      const deleted = await stack.serverCli(['entry', 'delete', '-entryID', alias!.id]);
      expect(deleted.code, deleted.stderr).toBe(0);
    });

    it('rejects an expired join token', async () => {
      const created = await stack.serverCli(['token', 'generate', '-ttl', '1']);
      const generatedBy = Date.now();
      const token = /Token: (\S+)/.exec(created.stdout)![1]!;
      // Its expiry is stored in whole seconds: one second after it was made, rounded up at worst.
      await untilPast('the join token to expire', (Math.floor(generatedBy / 1000) + 2) * 1000);
      const connection = new ServerConnection(`127.0.0.1:${stack.serverPort}`, TD);
      connections.push(connection);
      expectStatus(
        await failure(attestWithJoinToken(connection, roots, token)),
        grpc.status.PERMISSION_DENIED,
        /expired/,
      );
    });

    it.each([
      ['an upper-case trust domain', 'spiffe://Example.org/x', /trust domain/i],
      ['a dot segment', 'spiffe://example.org/a/../b', /dot segment|segment/i],
      ['a query', 'spiffe://example.org/a?b=c', /query|character/i],
      ['a percent-encoded path', 'spiffe://example.org/a%20b', /percent|character/i],
      ['a trailing slash', 'spiffe://example.org/a/', /trailing slash/i],
      ['the wrong scheme', 'https://example.org/a', /scheme/i],
    ])('refuses an entry with %s in its SPIFFE ID', async (_name, id, message) => {
      const result = await stack.serverCli([
        'entry',
        'create',
        '-parentID',
        NODE,
        '-spiffeID',
        id,
        '-selector',
        'unix:uid:1',
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr + result.stdout).toMatch(message);
    });

    it('refuses an entry without selectors, with a bad selector, or with a negative TTL', async () => {
      const noSelector = await stack.serverCli([
        'entry',
        'create',
        '-parentID',
        NODE,
        '-spiffeID',
        `${WORKLOAD}2`,
      ]);
      expect(noSelector.code).toBe(1);
      expect(noSelector.stderr).toMatch(/selector/i);
      const badSelector = await stack.serverCli([
        'entry',
        'create',
        '-parentID',
        NODE,
        '-spiffeID',
        `${WORKLOAD}2`,
        '-selector',
        'unix',
      ]);
      expect(badSelector.code).toBe(1);
      expect(badSelector.stderr).toMatch(/selector/i);
      const negative = await unary<BatchCreateEntryResponse__Output>((done) =>
        admin.entry().BatchCreateEntry(
          {
            entries: [
              {
                spiffeId: { trustDomain: TD, path: '/x' },
                parentId: { trustDomain: TD, path: '/y' },
                selectors: [{ type: 'unix', value: 'uid:1' }],
                x509SvidTtl: -5,
              },
            ],
          },
          done,
        ),
      );
      expect(negative.results[0]!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(negative.results[0]!.status!.message).toMatch(/x509_svid_ttl/);
    });

    it('refuses a JWT-SVID fetch for too many or too large audiences, before asking the server', async () => {
      const client = workloadClient(stack.agentSocket);
      const fetchFor = (audience: string[]) =>
        failure(
          new Promise((resolve, reject) =>
            client.FetchJWTSVID({ audience }, workloadMetadata(), (e, r) => (e ? reject(e) : resolve(r))),
          ),
        );
      const many = Array.from({ length: 10_000 }, (_, i) => `audience-${i}`);
      expectStatus(
        await fetchFor(many),
        grpc.status.INVALID_ARGUMENT,
        /10000 audiences requested; at most 64/,
      );
      expectStatus(
        await fetchFor(['x'.repeat(9000)]),
        grpc.status.INVALID_ARGUMENT,
        /audiences of 9000 bytes requested; at most 8192 bytes/,
      );
      client.close();
    });

    it('refuses control characters in entry strings with InvalidArgument, before the datastore sees them', async () => {
      const before = await snapshot();
      const create = (fields: Record<string, unknown>) =>
        unary<BatchCreateEntryResponse__Output>((done) =>
          admin.entry().BatchCreateEntry(
            {
              entries: [
                {
                  spiffeId: { trustDomain: TD, path: '/bad-input/control' },
                  parentId: { trustDomain: TD, path: '/bad-input/node' },
                  selectors: [{ type: 'unix', value: 'uid:1' }],
                  ...fields,
                },
              ],
            },
            done,
          ),
        );
      const refusals: [Record<string, unknown>, RegExp][] = [
        [
          { selectors: [{ type: 'unix', value: 'uid:4242\nSelector : unix:uid:0' }] },
          /selector value: .*U\+000A/,
        ],
        [{ selectors: [{ type: 'unix', value: 'uid:1\u0000' }] }, /selector value: .*U\+0000/],
        [{ selectors: [{ type: 'un\u0000ix', value: 'uid:1' }] }, /selector type: .*U\+0000/],
        [{ hint: 'web\u0000' }, /hint: .*U\+0000/],
        [{ id: 'entry\u0000' }, /entry ID/],
      ];
      for (const [fields, message] of refusals) {
        const result = (await create(fields)).results[0]!;
        expect(grpc.status[result.status!.code], result.status!.message).toBe('INVALID_ARGUMENT');
        expect(result.status!.message).toMatch(message);
      }
      expectStatus(
        await failure(unary((done) => admin.entry().GetEntry({ id: 'entry\u0000' }, done))),
        grpc.status.INVALID_ARGUMENT,
        /entry ID/,
      );
      const deleted = await unary<BatchDeleteEntryResponse__Output>((done) =>
        admin.entry().BatchDeleteEntry({ ids: ['entry\u0000'] }, done),
      );
      expect(grpc.status[deleted.results[0]!.status!.code]).toBe('INVALID_ARGUMENT');
      // The forged-line case from the command line too, so `entry show` cannot be made to lie.
      const cli = await stack.serverCli([
        'entry',
        'create',
        '-parentID',
        NODE,
        '-spiffeID',
        `${WORKLOAD}-control`,
        '-selector',
        'unix:uid:4242\nSelector : unix:uid:0',
      ]);
      expect(cli.code).toBe(1);
      expect(cli.stderr + cli.stdout).toMatch(/control character U\+000A/);
      expect(await snapshot()).toBe(before);
    });

    it('answers Workload API calls without the security header with InvalidArgument', async () => {
      const client = workloadClient(stack.agentSocket);
      const error = await failure(
        new Promise((resolve, reject) =>
          client.FetchJWTSVID({ audience: ['a'] }, (e, r) => (e ? reject(e) : resolve(r))),
        ),
      );
      client.close();
      expectStatus(error, grpc.status.INVALID_ARGUMENT, /security header/);
    });

    it('refuses JWT-SVIDs with alg none, a foreign kid, or the wrong audience, and a fetch without audience', async () => {
      const client = workloadClient(stack.agentSocket);
      const validate = (svid: string, audience: string) =>
        new Promise((resolve, reject) =>
          client.ValidateJWTSVID({ svid, audience }, workloadMetadata(), (e, r) =>
            e ? reject(e) : resolve(r),
          ),
        );
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const exp = Math.floor(Date.now() / 1000) + 300;
      const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: WORKLOAD, aud: ['a'], exp })}.`;
      expectStatus(await failure(validate(none, 'a')), grpc.status.INVALID_ARGUMENT, /alg|algorithm/i);
      const foreign = `${b64({ alg: 'ES256', kid: 'not-a-key-of-ours', typ: 'JWT' })}.${b64({ sub: WORKLOAD, aud: ['a'], exp })}.${Buffer.alloc(64).toString('base64url')}`;
      expectStatus(await failure(validate(foreign, 'a')), grpc.status.INVALID_ARGUMENT, /kid|key/i);

      // Until the agent has synced the workload's entry, the fetch is refused: ask until it is served.
      const fetched = await waitFor(
        'a JWT-SVID for the audience "right"',
        () =>
          new Promise<{ svids: { svid: string }[] }>((resolve, reject) =>
            client.FetchJWTSVID({ audience: ['right'] }, workloadMetadata(), (e, r) =>
              e ? reject(e) : resolve(r as never),
            ),
          ),
        30_000,
      );
      expectStatus(
        await failure(validate(fetched.svids[0]!.svid, 'wrong')),
        grpc.status.INVALID_ARGUMENT,
        /audience/i,
      );
      expectStatus(
        await failure(
          new Promise((resolve, reject) =>
            client.FetchJWTSVID({ audience: [] }, workloadMetadata(), (e, r) => (e ? reject(e) : resolve(r))),
          ),
        ),
        grpc.status.INVALID_ARGUMENT,
        /audience must be specified/,
      );
      client.close();
    });

    it('refuses invalid config files with the file, key and reason, before starting anything', async () => {
      const bad = join(run.dir, 'bad-server.conf');
      writeFileSync(
        bad,
        'server {\n  trust_domain = "example.org"\n  data_dir = "x"\n  ca_ttl = "1x"\n  colour = "blue"\n}\nplugins {\n  DataStore "sql" { plugin_data { database_type = "sqlite3" connection_string = "x" } }\n  KeyManager "memory" { plugin_data {} }\n}\n',
      );
      const result = await runCommand(process.execPath, [binPath('tspire-server'), 'run', '-config', bad]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('bad-server.conf');
      expect(result.stderr).toMatch(/server\.ca_ttl.*invalid duration "1x"/);
      expect(result.stderr).toMatch(/server\.colour.*unknown key/);
      expect(result.stderr).toMatch(/database_type.*sqlite3/);
    });
  });

  describe('agents the server must refuse', () => {
    it('refuses a banned agent, and the other agent keeps working', async () => {
      await call((o, done) => agentClients.entry.GetAuthorizedEntries({}, o, done));
      const banned = await stack.serverCli(['agent', 'ban', '-spiffeID', testAgentId]);
      expect(banned.code, banned.stderr).toBe(0);
      expect(
        (await listAgents()).agents.filter((a) => a.banned).map((a) => `spiffe://${TD}${a.id!.path}`),
      ).toEqual([testAgentId]);
      expectStatus(
        await failure(call((o, done) => agentClients.entry.GetAuthorizedEntries({}, o, done))),
        grpc.status.PERMISSION_DENIED,
        /is banned/,
      );
      expect(stack.agent!.isRunning()).toBe(true);
    });
  });
});
