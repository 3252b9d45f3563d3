import { describe, expect, it } from 'vitest';
import { CaJournal, CaJournalError } from '../../identity-core/pki/ca-journal.js';
import {
  activationThreshold,
  preparationThreshold,
  shouldActivate,
  shouldPrepare,
} from '../../identity-core/pki/ca-rotation-policy.js';
import { MemoryKeyManager } from '../../identity-core/pki/key-manager.js';
import { BACKDATE_SECONDS } from '../../identity-core/pki/x509-ca.js';
import { newJwtAuthority, newSelfSignedX509Authority } from '../../identity-core/server/ca/new-authority.js';

const authority = (id: string) => ({
  authorityId: id,
  keyId: `key-${id}`,
  notBefore: 0,
  notAfter: 600,
  material: '',
});

function expectError(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CaJournalError);
    expect((error as CaJournalError).code).toBe(code);
    expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a CaJournalError');
}

describe('CaJournal', () => {
  it('runs prepare → activate → taint → revoke with SPIRE statuses', () => {
    const journal = new CaJournal();
    journal.bootstrap('x509', authority('a'));
    expect(journal.states('x509').active?.authorityId).toBe('a');

    journal.prepare('x509', authority('b'));
    expect(journal.states('x509')).toMatchObject({
      active: { authorityId: 'a' },
      prepared: { authorityId: 'b', status: 'PREPARED' },
    });

    journal.activate('x509', 'b');
    expect(journal.states('x509')).toMatchObject({
      active: { authorityId: 'b' },
      old: { authorityId: 'a', status: 'OLD' },
    });
    expect(journal.states('x509').prepared).toBeUndefined();

    expect(journal.taint('x509', 'a').tainted).toBe(true);
    expect(journal.revoke('x509', 'a').authorityId).toBe('a');
    expect(journal.entries('x509').map((e) => e.authorityId)).toEqual(['b']);
    // As in SPIRE, the revoked authority stays the old one on show, until a prepare reuses its slot.
    expect(journal.states('x509').old).toMatchObject({ authorityId: 'a', status: 'OLD', revoked: true });
    expectError(() => journal.revoke('x509', 'a'), 'FAILED_PRECONDITION', /already revoked/);
    journal.prepare('x509', authority('c'));
    expect(journal.states('x509')).toMatchObject({
      active: { authorityId: 'b' },
      prepared: { authorityId: 'c' },
    });
    expect(journal.states('x509').old).toBeUndefined();
  });

  it('enforces every precondition with SPIRE wording', () => {
    const journal = new CaJournal();
    expectError(() => journal.prepare('x509', authority('b')), 'FAILED_PRECONDITION', /initializing/);
    journal.bootstrap('x509', authority('a'));
    expectError(() => journal.activate('x509', 'b'), 'INVALID_ARGUMENT', /unexpected authority ID/);
    expectError(() => journal.activate('x509', ''), 'INVALID_ARGUMENT', /no authority ID/);
    expectError(() => journal.taint('x509', 'a'), 'INVALID_ARGUMENT', /current local authority/);
    journal.prepare('x509', authority('b'));
    expectError(() => journal.taint('x509', 'b'), 'INVALID_ARGUMENT', /only Old/);
    expectError(() => journal.revoke('x509', 'b'), 'INVALID_ARGUMENT', /only Old/);
    journal.activate('x509', 'b');
    expectError(() => journal.activate('x509', 'a'), 'FAILED_PRECONDITION', /only Prepared/);
    expectError(() => journal.revoke('x509', 'a'), 'FAILED_PRECONDITION', /untainted/);
    journal.taint('x509', 'a');
    expectError(() => journal.taint('x509', 'a'), 'FAILED_PRECONDITION', /already tainted/);
    expectError(() => journal.prepare('x509', authority('c')), 'FAILED_PRECONDITION', /revoke it/);
    expectError(() => journal.revoke('x509', 'b'), 'INVALID_ARGUMENT', /current authority/);
  });

  it('keeps X.509 and JWT sides apart and survives a JSON round trip', () => {
    const journal = new CaJournal();
    journal.bootstrap('x509', authority('x'));
    journal.bootstrap('jwt', authority('j'));
    journal.prepare('jwt', authority('j2'));
    const copy = CaJournal.fromJSON(JSON.parse(JSON.stringify(journal.toJSON())));
    expect(copy.states('jwt').prepared?.authorityId).toBe('j2');
    expect(copy.states('x509').prepared).toBeUndefined();
    expect(() => CaJournal.fromJSON({})).toThrow(/malformed/);
  });
});

describe('rotation thresholds', () => {
  it('prepares at half the lifetime and activates at one sixth left', () => {
    const ca = { notBefore: 0, notAfter: 600 };
    expect(preparationThreshold(0, 600)).toBe(300);
    expect(activationThreshold(0, 600)).toBe(500);
    expect(shouldPrepare(ca, 300)).toBe(false);
    expect(shouldPrepare(ca, 301)).toBe(true);
    expect(shouldActivate(ca, 500)).toBe(false);
    expect(shouldActivate(ca, 501)).toBe(true);
  });

  it('counts from when the authority was issued, as SPIRE does, not from its backdated NotBefore', async () => {
    // A 130 s CA prepared at 1000 whose NotBefore is backdated 10 s: half-life at 1065, not 1060.
    const ca = { notBefore: 990, issuedAt: 1000, notAfter: 1130 };
    expect(shouldPrepare(ca, 1064)).toBe(false);
    expect(shouldPrepare(ca, 1066)).toBe(true);
    expect(shouldActivate(ca, 1108)).toBe(false);
    expect(shouldActivate(ca, 1109)).toBe(true);
    // A journal entry written before issuedAt was kept counts from NotBefore.
    expect(shouldPrepare({ notBefore: 990, notAfter: 1130 }, 1061)).toBe(true);
    // New authorities carry it: an X.509 CA's is its NotBefore plus the backdating, a JWT key's is now.
    const keyManager = new MemoryKeyManager();
    const x509 = await newSelfSignedX509Authority({ keyManager, trustDomain: 'example.org', caTtl: 130 });
    // (a second may tick between the two readings of the clock)
    expect(x509.issuedAt! - x509.notBefore).toBeGreaterThanOrEqual(BACKDATE_SECONDS - 1);
    expect(x509.issuedAt! - x509.notBefore).toBeLessThanOrEqual(BACKDATE_SECONDS);
    const jwt = await newJwtAuthority(keyManager, 130);
    expect(jwt.notAfter - jwt.issuedAt!).toBe(130);
  });

  it('caps the lead times at 30 and 7 days for long-lived CAs', () => {
    const year = 365 * 24 * 3600;
    expect(preparationThreshold(0, year)).toBe(year - 30 * 24 * 3600);
    expect(activationThreshold(0, year)).toBe(year - 7 * 24 * 3600);
  });
});
