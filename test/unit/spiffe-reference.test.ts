/**
 * The project's SPIFFE validators against the reference implementation's verdicts: every case in
 * test/fixtures/spiffe-reference/ was judged by go-spiffe v2.5.0 itself (see that folder's README),
 * and the project must accept what it accepts, with the same values, and refuse what it refuses.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateJwtSvid } from '../../identity-core/spiffe/jwt-svid.js';
import { parsePemCertificates, splitDerCertificates } from '../../identity-core/spiffe/pem.js';
import { SpiffeId, parseTrustDomain } from '../../identity-core/spiffe/spiffe-id.js';
import { parseJwtBundleJson, parseSpiffeBundleJson } from '../../identity-core/spiffe/trust-bundle.js';
import { parseX509Svid, verifyX509Svid } from '../../identity-core/spiffe/x509-svid.js';

interface Verdict {
  ok: boolean;
  error?: string;
  [value: string]: unknown;
}

interface ReferenceCase {
  kind: string;
  name: string;
  input: unknown;
  expect: Verdict;
}

interface Fixture {
  reference: string;
  cases: ReferenceCase[];
  certificates?: Record<string, string>;
  context?: { now: number; trustDomain: string; bundle: unknown };
}

const folder = join(import.meta.dirname, '..', 'fixtures', 'spiffe-reference');
const load = (file: string) => JSON.parse(readFileSync(join(folder, file), 'utf8')) as Fixture;
const fixtures = {
  ids: load('spiffe-id.json'),
  x509: load('x509.json'),
  jwt: load('jwt-svid.json'),
  bundles: load('bundles.json'),
};

const sortedKeyIds = (ids: string[]) => [...new Set(ids)].sort();

/** Runs the project's validator for one case and reports its verdict in the fixture's terms. */
async function judge(fixture: Fixture, c: ReferenceCase): Promise<Verdict> {
  const certificate = (name: string) => Buffer.from(fixture.certificates![name]!, 'base64');
  try {
    switch (c.kind) {
      case 'spiffe-id': {
        const id = SpiffeId.parse(c.input as string);
        return { ok: true, trustDomain: id.trustDomain, path: id.path };
      }
      case 'trust-domain':
        return { ok: true, name: parseTrustDomain(c.input as string) };
      case 'path':
        SpiffeId.fromParts('example.org', c.input as string);
        return { ok: true };
      case 'x509-svid-verify': {
        const input = c.input as { chain: string[]; roots: string[]; bundleTrustDomain: string; now: number };
        const { spiffeId } = verifyX509Svid(
          input.chain.map(certificate),
          input.roots.map(certificate),
          input.now,
          input.bundleTrustDomain,
        );
        return { ok: true, spiffeId: spiffeId.toString() };
      }
      case 'x509-svid-parse': {
        const input = c.input as { chain: string[] };
        return { ok: true, spiffeId: parseX509Svid(input.chain.map(certificate)).toString() };
      }
      case 'x509-bundle-pem':
        return { ok: true, count: parsePemCertificates(c.input as string).length };
      case 'x509-bundle-der':
        return { ok: true, count: splitDerCertificates(Buffer.from(c.input as string, 'base64')).length };
      case 'jwt-svid': {
        const context = fixture.context!;
        const input = c.input as { token: string; audience: string[] };
        const bundle = parseSpiffeBundleJson(JSON.stringify(context.bundle), context.trustDomain);
        const { spiffeId, expiresAt } = await validateJwtSvid(input.token, {
          bundle,
          audience: input.audience,
          now: context.now,
        });
        return { ok: true, spiffeId: spiffeId.toString(), expiry: expiresAt };
      }
      case 'spiffe-bundle': {
        const bundle = parseSpiffeBundleJson(c.input as string, 'example.org');
        return {
          ok: true,
          x509Authorities: bundle.x509Authorities.length,
          keyIds: sortedKeyIds(bundle.jwtAuthorities.map((a) => a.keyId)),
          sequence: bundle.sequenceNumber,
          refreshHint: bundle.refreshHint,
        };
      }
      case 'jwt-bundle': {
        const bundle = parseJwtBundleJson(c.input as string, 'example.org');
        return { ok: true, keyIds: sortedKeyIds(bundle.jwtAuthorities.map((a) => a.keyId)) };
      }
      default:
        throw new Error(`unknown case kind ${c.kind}`);
    }
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** The project's bundle has no "unset" sequence or refresh hint: 0 stands for both. */
function expected(c: ReferenceCase): Verdict {
  if (c.kind !== 'spiffe-bundle' || !c.expect.ok) return c.expect;
  return { sequence: 0, refreshHint: 0, ...c.expect };
}

/**
 * Where the project refuses on purpose what go-spiffe keeps: an `oct` (symmetric) key sits in a
 * go-spiffe bundle as an authority no JWT-SVID can ever use, since no HS* algorithm is allowed; the
 * project says so instead. Each entry names the case and the refusal it must give.
 */
const DELIBERATE: Record<string, RegExp> = {
  'SPIFFE bundle: jwt oct key': /symmetric \("oct"\) keys cannot be SPIFFE authorities/,
  'JWKS: jwt oct key': /symmetric \("oct"\) keys cannot be SPIFFE authorities/,
};

function agrees(want: Verdict, got: Verdict): boolean {
  if (want.ok !== got.ok) return false;
  if (!want.ok) return true;
  return Object.entries(want).every(([key, value]) => JSON.stringify(got[key]) === JSON.stringify(value));
}

async function disagreements(fixture: Fixture): Promise<string[]> {
  const found: string[] = [];
  for (const c of fixture.cases) {
    const want = expected(c);
    const got = await judge(fixture, c);
    const deliberate = DELIBERATE[c.name];
    if (deliberate) {
      if (got.ok || !deliberate.test(got.error ?? ''))
        found.push(`${c.name}\n    must be refused with ${deliberate}, project: ${JSON.stringify(got)}`);
      continue;
    }
    if (!agrees(want, got))
      found.push(`${c.name}\n    go-spiffe: ${JSON.stringify(want)}\n    project:   ${JSON.stringify(got)}`);
  }
  return found;
}

describe('agreement with go-spiffe v2.5.0 on its own kinds of cases', () => {
  it('has at least 900 cases, accepted and refused ones in every file', () => {
    const all = Object.values(fixtures).flatMap((f) => f.cases);
    expect(all.length).toBeGreaterThanOrEqual(900);
    for (const fixture of Object.values(fixtures)) {
      expect(fixture.cases.some((c) => c.expect.ok)).toBe(true);
      expect(fixture.cases.some((c) => !c.expect.ok)).toBe(true);
    }
  });

  it.each(Object.entries(fixtures))('%s: 0 disagreements', async (_name, fixture) => {
    const found = await disagreements(fixture);
    expect(found, `${found.length} of ${fixture.cases.length} cases disagree:\n${found.join('\n')}`).toEqual(
      [],
    );
  });

  it('names every deliberate difference after a case that exists', () => {
    const names = new Set(Object.values(fixtures).flatMap((f) => f.cases.map((c) => c.name)));
    for (const name of Object.keys(DELIBERATE)) expect(names.has(name), name).toBe(true);
  });

  it('refuses a CA certificate with keyUsage digitalSignature only as an X509-SVID leaf', async () => {
    const caLeaves = fixtures.x509.cases.filter((c) => c.name.includes('leaf-ku-ds-ca-true-one-uri'));
    expect(caLeaves.length).toBeGreaterThan(0);
    for (const c of caLeaves) {
      expect(c.expect.ok).toBe(false);
      expect((await judge(fixtures.x509, c)).error).toMatch(/CA/);
    }
  });
});
