import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realSpire } from '../../deployment/implementation/spire.js';
import { tspire } from '../../deployment/implementation/tspire.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { X509SvidMinter } from '../../identity-core/pki/svid-minter.js';
import { toPem } from '../../identity-core/spiffe/pem.js';

/**
 * What deployment/ reads from real SPIRE (v1.13.3) besides its API: an agent's stored identity in
 * the files a spire-agent writes (storage's agent-data.json, the disk KeyManager's keys.json), its
 * log lines, and its config as rendered for it.
 */
const dir = mkdtempSync(join(tmpdir(), 'sd-real-spire-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pkcs8 = (key: KeyObject) => key.export({ format: 'der', type: 'pkcs8' });
/** How Go's encoding/json writes a []byte: base64. SPIRE's storage keeps each certificate as PEM bytes. */
const goBytes = (data: Buffer | string) => Buffer.from(data).toString('base64');

async function agentFiles(name: string, options: { svidKeyStored: boolean }) {
  const root = p256();
  const ca = await createSelfSignedCa({ trustDomain: 'td', privateKey: root.privateKey, ttlSeconds: 3600 });
  const agentKey = p256();
  const other = p256();
  const svid = new X509SvidMinter({ der: ca.der, privateKey: root.privateKey }).mint({
    spiffeId: 'spiffe://td/spire/agent/join_token/abc',
    publicKeySpki: agentKey.publicKey.export({ format: 'der', type: 'spki' }),
    ttlSeconds: 600,
  });
  const dataDir = join(dir, name);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir);
  writeFileSync(
    join(dataDir, 'agent-data.json'),
    JSON.stringify({
      svid: [goBytes(toPem(svid.der))],
      bundle: [goBytes(toPem(ca.der))],
      reattestable: false,
      bootstrap_use: 0,
      bootstrap_start_time: '0001-01-01T00:00:00Z',
      connection_attempts: 0,
    }),
  );
  // The agent alternates its SVID key between two ids; the other one holds a key it no longer uses.
  const keys: Record<string, string> = { 'agent-svid-A': goBytes(pkcs8(other.privateKey)) };
  if (options.svidKeyStored) keys['agent-svid-B'] = goBytes(pkcs8(agentKey.privateKey));
  writeFileSync(join(dataDir, 'keys.json'), JSON.stringify({ keys }, null, '\t'));
  return { dataDir, svid: svid.der, ca: ca.der, key: pkcs8(agentKey.privateKey) };
}

describe("real SPIRE agent's stored identity", () => {
  it('reads the SVID chain, the key its leaf carries and the bundle roots, as DER', async () => {
    const files = await agentFiles('agent-data', { svidKeyStored: true });
    const stored = await realSpire.storedAgentIdentity(files.dataDir);
    expect(stored).toBeDefined();
    expect(stored!.spiffeId).toBe('spiffe://td/spire/agent/join_token/abc');
    expect(stored!.chain).toHaveLength(1);
    expect(stored!.chain[0]!.equals(files.svid)).toBe(true);
    expect(stored!.key.equals(files.key)).toBe(true);
    expect(stored!.bundleRoots.map((r) => new X509Certificate(r).fingerprint256)).toEqual([
      new X509Certificate(files.ca).fingerprint256,
    ]);
  });

  it('has nothing usable stored when the SVID key is missing (the agent attests afresh then)', async () => {
    const files = await agentFiles('keyless', { svidKeyStored: false });
    expect(await realSpire.storedAgentIdentity(files.dataDir)).toBeUndefined();
  });

  it('has nothing stored for an agent that never attested, and forgets what it had', async () => {
    const empty = join(dir, 'never');
    mkdirSync(empty);
    expect(await realSpire.storedAgentIdentity(empty)).toBeUndefined();
    const files = await agentFiles('forget', { svidKeyStored: true });
    await realSpire.forgetAgentIdentity(files.dataDir);
    expect(readdirSync(files.dataDir)).toEqual([]);
    expect(await realSpire.storedAgentIdentity(files.dataDir)).toBeUndefined();
  });

  it('says which file is not what a spire-agent writes', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'agent-data.json'), '{"svid": [');
    await expect(realSpire.storedAgentIdentity(bad)).rejects.toThrow(/agent-data\.json is not the JSON/);
  });
});

describe('entry cache reload failures in server logs', () => {
  it("reads real SPIRE's JSON lines (its default cache's, the events-based one's), and nothing else", () => {
    const at = '2026-12-05T10:00:01.25Z';
    const line = (msg: string) =>
      JSON.stringify({ error: 'datastore-sql: connection refused', level: 'error', msg, time: at });
    expect(realSpire.entryCacheReloadFailedAt(line('Failed to reload entry cache'))).toBe(Date.parse(at));
    expect(realSpire.entryCacheReloadFailedAt(line('Failed to update entry cache'))).toBe(Date.parse(at));
    expect(realSpire.entryCacheReloadFailedAt(line('Failed to full refresh entry cache'))).toBe(
      Date.parse(at),
    );
    expect(realSpire.entryCacheReloadFailedAt(line('Failed to reload configs'))).toBeUndefined();
    expect(
      realSpire.entryCacheReloadFailedAt('time="x" level=error msg="Failed to update entry cache"'),
    ).toBe(undefined);
  });

  it("reads the bundled SPIRE's lines, whose time is in ms", () => {
    const line = JSON.stringify({ level: 50, time: 1_700_000_000_000, msg: 'Failed to reload entry cache' });
    expect(tspire.entryCacheReloadFailedAt(line)).toBe(1_700_000_000_000);
    expect(tspire.entryCacheReloadFailedAt('{"msg":"Failed to reload entry cache"}')).toBeUndefined();
    expect(tspire.entryCacheReloadFailedAt('not json')).toBeUndefined();
  });
});

describe('configs and datastores per implementation', () => {
  const server = {
    trustDomain: 'td',
    bindPort: 8081,
    socketPath: '/tmp/s.sock',
    dataDir: '/run/g/server-data',
    caTtl: '1h',
    x509SvidTtl: '5m',
    jwtSvidTtl: '5m',
    logLevel: 'INFO',
  };

  it('embeds a SQLite file in the server data directory for real SPIRE, PGlite for the bundled one', () => {
    const sqlite = realSpire.embeddedDatabase('/run/g');
    expect(sqlite).toEqual({ type: 'sqlite3', file: '/run/g/server-data/datastore.sqlite3' });
    const hcl = realSpire.renderServerConfig({ ...server, database: sqlite });
    expect(hcl).toContain('database_type = "sqlite3"');
    expect(hcl).toContain('connection_string = "/run/g/server-data/datastore.sqlite3"');
    expect(tspire.embeddedDatabase('/run/g')).toEqual({ type: 'pglite', directory: '/run/g/datastore' });
    expect(tspire.unavailable('sqlite3')).toMatch(/no sqlite3 datastore/);
    expect(realSpire.unavailable('pglite')).toMatch(/no PGlite datastore|not built/);
  });

  it('has real SPIRE log JSON, and leaves the bundled configs without log_format (it refuses unknown keys)', () => {
    const database = { type: 'postgres' as const, connectionString: 'postgres://h/db' };
    expect(realSpire.renderServerConfig({ ...server, database })).toMatch(/^ {2}log_format = "json"$/m);
    // lib/pq would require TLS where node-postgres does not: both connect alike unless the URL chooses.
    expect(realSpire.renderServerConfig({ ...server, database })).toContain(
      'connection_string = "postgres://h/db?sslmode=disable"',
    );
    expect(
      realSpire.renderServerConfig({
        ...server,
        database: { ...database, connectionString: 'postgres://h/db?sslmode=verify-full' },
      }),
    ).toContain('connection_string = "postgres://h/db?sslmode=verify-full"');
    expect(tspire.renderServerConfig({ ...server, database })).not.toContain('log_format');
    const agent = {
      trustDomain: 'td',
      serverPort: 8081,
      socketPath: '/tmp/a.sock',
      dataDir: '/tmp/a',
      trustBundlePath: '/tmp/b.pem',
      syncInterval: '5s',
      logLevel: 'INFO',
    };
    expect(realSpire.renderAgentConfig(agent)).toMatch(/^ {2}log_format = "json"$/m);
    expect(tspire.renderAgentConfig(agent)).not.toContain('log_format');
  });
});
