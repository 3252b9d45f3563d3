import type { RegistrationEntry, Selector } from '../datastore/records.js';
import type { Entry__Output } from '../proto/gen/spire/api/types/Entry.js';
import type { SelectorMatch__Output } from '../proto/gen/spire/api/types/SelectorMatch.js';
import { spiffeIdFromProto } from '../proto/convert.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';

export type NewEntry = Omit<RegistrationEntry, 'createdAt' | 'revisionNumber' | 'id'> & { id?: string };

export class EntryValidationError extends Error {}

const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const ENTRY_ID = /^[\x21-\x7e]{1,255}$/;
/** Upper bound on TTLs a request may ask for; anything longer is surely a typo (10 years). */
const MAX_TTL = 10 * 365 * 24 * 3600;

function parseId(id: Entry__Output['spiffeId'], field: string, trustDomain: string): SpiffeId {
  let parsed: SpiffeId;
  try {
    parsed = SpiffeId.parse(spiffeIdFromProto(id, field));
  } catch (error) {
    throw new EntryValidationError(`invalid ${field}: ${(error as Error).message}`);
  }
  if (parsed.trustDomain !== trustDomain) {
    throw new EntryValidationError(
      `invalid ${field}: "${parsed}" is not a member of trust domain "${trustDomain}"`,
    );
  }
  return parsed;
}

export function validateSelector(selector: Selector): Selector {
  if (selector.type === '') throw new EntryValidationError('invalid selector: missing selector type');
  if (selector.type.includes(':'))
    throw new EntryValidationError('invalid selector: selector type contains ":"');
  if (selector.value === '') throw new EntryValidationError('invalid selector: missing selector value');
  return { type: selector.type, value: selector.value };
}

function validateDnsName(name: string): string {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (name.length > 253 || bare.split('.').some((label) => !DNS_LABEL.test(label))) {
    throw new EntryValidationError(`invalid DNS name "${name}"`);
  }
  return name;
}

function validateTtl(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_TTL) {
    throw new EntryValidationError(`invalid ${field}: must be between 0 and ${MAX_TTL} seconds`);
  }
  return value;
}

/** Checks an entry from BatchCreateEntry the way SPIRE's entry API does, before anything is written. */
export function validateNewEntry(entry: Entry__Output, trustDomain: string): NewEntry {
  const spiffeId = parseId(entry.spiffeId, 'spiffe ID', trustDomain);
  const parentId = parseId(entry.parentId, 'parent ID', trustDomain);
  if (spiffeId.path === '' || spiffeId.path.startsWith('/spire/')) {
    throw new EntryValidationError(
      `invalid spiffe ID: "${spiffeId}" is not a workload in trust domain "${trustDomain}"; path must not be empty or in the reserved /spire namespace`,
    );
  }
  if (entry.selectors.length === 0) throw new EntryValidationError('selector list is empty');
  if (entry.id !== '' && !ENTRY_ID.test(entry.id)) {
    throw new EntryValidationError(
      'invalid entry ID: must be 1 to 255 printable ASCII characters without spaces',
    );
  }
  if (entry.federatesWith.length > 0)
    throw new EntryValidationError('federation is not supported by this server');
  if (entry.expiresAt < 0) throw new EntryValidationError('invalid expires_at: must not be negative');
  if (entry.hint.length > 1024) throw new EntryValidationError('invalid hint: longer than 1024 characters');
  return {
    ...(entry.id !== '' ? { id: entry.id } : {}),
    spiffeId: spiffeId.toString(),
    parentId: parentId.toString(),
    selectors: entry.selectors.map(validateSelector),
    x509SvidTtl: validateTtl(entry.x509SvidTtl, 'x509_svid_ttl'),
    jwtSvidTtl: validateTtl(entry.jwtSvidTtl, 'jwt_svid_ttl'),
    downstream: entry.downstream,
    admin: entry.admin,
    dnsNames: entry.dnsNames.map(validateDnsName),
    hint: entry.hint,
    expiresAt: entry.expiresAt,
  };
}

/** SPIRE's selector match behaviours for ListEntries filters. */
export function matchesSelectorFilter(entrySelectors: Selector[], filter: SelectorMatch__Output): boolean {
  const have = new Set(entrySelectors.map((s) => `${s.type}:${s.value}`));
  const want = new Set(filter.selectors.map((s) => `${s.type}:${s.value}`));
  const wantAllPresent = [...want].every((s) => have.has(s));
  switch (filter.match) {
    case 'MATCH_EXACT':
      return wantAllPresent && have.size === want.size;
    case 'MATCH_SUBSET':
      return [...have].every((s) => want.has(s));
    case 'MATCH_SUPERSET':
      return wantAllPresent;
    case 'MATCH_ANY':
      return [...want].some((s) => have.has(s));
    default:
      return wantAllPresent && have.size === want.size;
  }
}
