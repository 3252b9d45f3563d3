import 'reflect-metadata';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityStack, runCommand } from '../../deployment/stack/identity-stack.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { pinnedTool } from '../support/tools.js';
import { waitFor } from '../support/waits.js';

/**
 * Real SPIFFE clients against the bundled SPIRE: the real `spire-agent` v1.13.3 CLI talks to
 * tspire-agent's Workload API, and openssl judges the certificates. Runs once per datastore backend.
 */
const spireAgent = pinnedTool('spire-agent');
if (spireAgent.missing) console.warn(spireAgent.missing);
const pgStatus = await postgresAvailable();
if (!pgStatus.ok) console.warn(pgStatus.reason);
const openssl = await runCommand('openssl', ['version']);
if (openssl.code !== 0) console.warn('openssl is not installed; skipping the conformance tests that need it');

const TTL_SECONDS = 600;
const WORKLOAD_ID = 'spiffe://example.org/conformance/workload';
const backends = [
  { name: 'embedded PGlite', postgres: false, skip: false },
  { name: 'PostgreSQL', postgres: true, skip: !pgStatus.ok },
];

describe.each(backends)('real spire-agent CLI against tspire ($name)', ({ postgres, skip }) => {
  const disabled = skip || !!spireAgent.missing || openssl.code !== 0;
  let stack: IdentityStack;
  let database: TestDatabase | undefined;
  const run = makeRunDir('sdc-');
  const spire = (args: string[]) => runCommand(spireAgent.path!, [...args, '-socketPath', stack.agentSocket]);

  beforeAll(async () => {
    if (disabled) return;
    database = postgres ? await createTestDatabase('sd_conformance') : undefined;
    stack = await IdentityStack.create({
      runDir: run.dir,
      x509SvidTtl: `${TTL_SECONDS}s`,
      syncInterval: '1s',
      ...(database
        ? { database: { type: 'postgres' as const, connectionString: database.connectionString } }
        : {}),
    });
    await stack.startServer();
    const token = await stack.generateToken('spiffe://example.org/conformance/node');
    const uid = String(process.getuid!());
    const created = await stack.serverCli([
      'entry',
      'create',
      '-parentID',
      'spiffe://example.org/conformance/node',
      '-spiffeID',
      WORKLOAD_ID,
      '-selector',
      `unix:uid:${uid}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(WORKLOAD_ID);
    await stack.startAgent(token);
  });

  afterAll(async () => {
    await stack?.stop();
    await database?.drop();
    run.remove();
  });

  it.skipIf(disabled)(
    'serves an X509-SVID that openssl verifies, with one URI SAN and lifetime TTL + 10 s',
    async () => {
      const out = join(run.dir, 'fetched');
      mkdirSync(out);
      await waitFor(
        'spire-agent api fetch x509 to succeed',
        async () => {
          const result = await spire(['api', 'fetch', 'x509', '-write', out]);
          if (result.code !== 0) throw new Error(result.stderr || result.stdout);
          return result;
        },
        45_000,
        500,
      );
      const svidPem = join(out, 'svid.0.pem');
      const verify = await runCommand('openssl', ['verify', '-CAfile', join(out, 'bundle.0.pem'), svidPem]);
      expect(verify.stdout.trim(), verify.stderr).toBe(`${svidPem}: OK`);

      const cert = new x509.X509Certificate(readFileSync(svidPem, 'utf8'));
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
      const uris = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value);
      expect(uris).toEqual([WORKLOAD_ID]);
      expect((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000).toBe(TTL_SECONDS + 10);

      const key = await runCommand('openssl', ['pkey', '-in', join(out, 'svid.0.key'), '-noout']);
      expect(key.code, key.stderr).toBe(0);
    },
  );

  it.skipIf(disabled)('serves a JWT-SVID that the real client fetches and validates', async () => {
    const fetched = await waitFor(
      'spire-agent api fetch jwt to succeed',
      async () => {
        const result = await spire(['api', 'fetch', 'jwt', '-audience', 'conformance-test']);
        if (result.code !== 0) throw new Error(result.stderr || result.stdout);
        return result;
      },
      45_000,
      500,
    );
    expect(fetched.stdout).toContain(`token(${WORKLOAD_ID})`);
    expect(fetched.stdout).toContain('bundle(spiffe://example.org)');
    const token = /token\([^)]*\):\s+(\S+)/.exec(fetched.stdout)?.[1];
    expect(token).toBeDefined();

    const valid = await spire(['api', 'validate', 'jwt', '-audience', 'conformance-test', '-svid', token!]);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('SVID is valid.');
    expect(valid.stdout).toContain(WORKLOAD_ID);

    const wrongAudience = await spire([
      'api',
      'validate',
      'jwt',
      '-audience',
      'someone-else',
      '-svid',
      token!,
    ]);
    expect(wrongAudience.code).not.toBe(0);
    expect(wrongAudience.stderr + wrongAudience.stdout).toMatch(/audience/i);
  });
});
