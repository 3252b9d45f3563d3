import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../identity-core/cli/server-cli.js';
import { openDatastore } from '../../identity-core/datastore/datastore.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';

/**
 * A server that cannot start must leave its datastore as it found it: every path and port is tried
 * before the CA manager activates anything. Before these checks, each failed start with `data_dir`
 * pointing at a file left one more root and JWT key in the bundle.
 */
const available = await postgresAvailable();
if (!available.ok) console.warn(available.reason);

function capture() {
  const chunks: string[] = [];
  return { write: (chunk: string) => chunks.push(chunk), text: () => chunks.join('') };
}

describe.skipIf(!available.ok)('server start-up checks', () => {
  let dir: string;
  let database: TestDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-startup-'));
    database = await createTestDatabase('sd_startup');
  });
  afterAll(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  function config(server: Record<string, string | number>): string {
    const file = join(dir, `server-${Object.keys(server).join('-')}.conf`);
    const settings = Object.entries({
      trust_domain: 'example.org',
      data_dir: join(dir, 'data'),
      socket_path: join(dir, 'api.sock'),
      bind_address: '127.0.0.1',
      bind_port: 0,
      ...server,
    })
      .map(([key, value]) => `  ${key} = ${JSON.stringify(value)}`)
      .join('\n');
    writeFileSync(
      file,
      `server {\n${settings}\n}\nplugins {\n  DataStore "sql" {\n    plugin_data {\n      database_type = "postgres"\n      connection_string = ${JSON.stringify(database.connectionString)}\n    }\n  }\n  KeyManager "memory" {\n    plugin_data {}\n  }\n}\n`,
    );
    return file;
  }

  async function failedRun(file: string): Promise<string> {
    const stderr = capture();
    const code = await main(['run', '-config', file], {
      stdout: capture(),
      stderr,
      signals: new EventEmitter(),
    });
    expect(code, stderr.text()).toBe(1);
    return stderr.text();
  }

  async function bundleShape(): Promise<{ x509: number; jwt: number; sequence: number } | undefined> {
    const datastore = await openDatastore({
      databaseType: 'postgres',
      connectionString: database.connectionString,
    });
    try {
      const bundle = await datastore.bundles.get('example.org');
      return (
        bundle && {
          x509: bundle.x509Authorities.length,
          jwt: bundle.jwtAuthorities.length,
          sequence: bundle.sequenceNumber,
        }
      );
    } finally {
      await datastore.close();
    }
  }

  it('refuses a data_dir that is a file three times over, naming the key, and writes nothing', async () => {
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, 'x');
    const before = await bundleShape();
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(await failedRun(config({ data_dir: file }))).toMatch(
        new RegExp(`server\\.data_dir: ${file} exists and is not a directory`),
      );
    }
    expect(await bundleShape()).toEqual(before);
  });

  it('refuses a socket_path longer than a Unix socket allows, and leaves no socket at a cut path', async () => {
    const long = join(dir, 's'.repeat(120), 'api.sock');
    const before = await bundleShape();
    expect(await failedRun(config({ socket_path: long }))).toMatch(
      /server\.socket_path: .* is \d+ bytes; a Unix socket path may be at most 107/,
    );
    expect(existsSync(long.slice(0, 107))).toBe(false);
    expect(await bundleShape()).toEqual(before);
  });

  it('refuses a bind_port already taken before it touches the datastore', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const before = await bundleShape();
      expect(await failedRun(config({ bind_port: port }))).toMatch(
        new RegExp(`server\\.bind_port: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`),
      );
      expect(await bundleShape()).toEqual(before);
    } finally {
      taken.close();
    }
  });
});
