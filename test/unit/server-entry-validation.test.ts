import { describe, expect, it } from 'vitest';
import type { Entry__Output } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import {
  EntryValidationError,
  validateEntryId,
  validateNewEntry,
} from '../../identity-core/server/entry-validation.js';

const TD = 'example.org';

function entry(fields: Partial<Entry__Output> = {}): Entry__Output {
  return {
    id: '',
    spiffeId: { trustDomain: TD, path: '/web' },
    parentId: { trustDomain: TD, path: '/node' },
    selectors: [{ type: 'unix', value: 'uid:1000' }],
    x509SvidTtl: 0,
    federatesWith: [],
    admin: false,
    downstream: false,
    expiresAt: 0,
    dnsNames: [],
    revisionNumber: 0,
    storeSvid: false,
    jwtSvidTtl: 0,
    hint: '',
    createdAt: 0,
    additionalAttributes: null,
    ...fields,
  } as Entry__Output;
}

describe('entry validation', () => {
  it('accepts a plain entry, so the refusals below are about what they change', () => {
    expect(validateNewEntry(entry({ hint: 'web ünïcode', id: 'my-entry' }), TD)).toMatchObject({
      id: 'my-entry',
      spiffeId: 'spiffe://example.org/web',
      selectors: [{ type: 'unix', value: 'uid:1000' }],
    });
  });

  it.each([
    [
      'a newline in a selector value',
      { selectors: [{ type: 'unix', value: 'uid:1\nSelector : unix:uid:0' }] },
      /selector value: contains the control character U\+000A/,
    ],
    [
      'a NUL in a selector value',
      { selectors: [{ type: 'unix', value: 'uid:1\u0000' }] },
      /selector value: contains the control character U\+0000/,
    ],
    ['a DEL in a selector value', { selectors: [{ type: 'unix', value: 'uid:1\u007f' }] }, /U\+007F/],
    ['a C1 control in a selector value', { selectors: [{ type: 'unix', value: 'uid:\u00851' }] }, /U\+0085/],
    [
      'a tab in a selector type',
      { selectors: [{ type: 'un\tix', value: 'uid:1' }] },
      /selector type: contains the control character U\+0009/,
    ],
    [
      'a selector value over 1024 bytes',
      { selectors: [{ type: 'unix', value: 'é'.repeat(513) }] },
      /selector value: longer than 1024 bytes/,
    ],
    ['a NUL in the hint', { hint: 'web\u0000' }, /hint: contains the control character U\+0000/],
    ['a NUL in the entry ID', { id: 'entry\u0000' }, /entry ID/],
    [
      'a SPIFFE ID over 2048 bytes',
      { spiffeId: { trustDomain: TD, path: `/${'a'.repeat(2048)}` } },
      /spiffe ID: longer than 2048 bytes/,
    ],
    ['a NUL in a DNS name', { dnsNames: ['a\u0000.example.org'] }, /DNS name/],
    [
      'store_svid (no SVIDStore plugin to honour it)',
      { storeSvid: true },
      /store_svid is not supported.*SVIDStore/,
    ],
  ])('refuses %s', (_name, fields, message) => {
    expect(() => validateNewEntry(entry(fields as Partial<Entry__Output>), TD)).toThrow(EntryValidationError);
    expect(() => validateNewEntry(entry(fields as Partial<Entry__Output>), TD)).toThrow(message);
  });

  it('refuses entry IDs that could never have been created', () => {
    expect(validateEntryId('2f0c3a4e-entry')).toBe('2f0c3a4e-entry');
    for (const id of ['', 'a b', 'a\u0000', 'a\n', 'x'.repeat(256)])
      expect(() => validateEntryId(id)).toThrow(/invalid entry ID/);
  });
});
