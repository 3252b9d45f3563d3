import type { RegistrationEntry, Selector } from '../datastore/records.js';
import type { Entry__Output } from '../proto/gen/spire/api/types/Entry.js';
import type { SelectorMatch__Output } from '../proto/gen/spire/api/types/SelectorMatch.js';
import { spiffeIdFromProto } from '../proto/convert.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';

export type NewEntry = Omit<RegistrationEntry, 'createdAt' | 'revisionNumber' | 'id'> & { id?: string };

export class EntryValidationError extends Error {}

const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const ENTRY_ID = /^[\x21-\x7e]{1,255}$/;
/** C0 and C1 controls and DEL: a newline would forge lines in `entry show`, a NUL cannot be stored. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/**
 * Byte limits on what the datastore indexes (entry IDs, SPIFFE IDs, selectors), well under
 * PostgreSQL's B-tree row limit; 2048 is the SPIFFE ID standard's recommended maximum.
 */
const MAX_SPIFFE_ID_BYTES = 2048;
const MAX_SELECTOR_TYPE_BYTES = 255;
const MAX_SELECTOR_VALUE_BYTES = 1024;
/** Upper bound on TTLs a request may ask for; anything longer is surely a typo (10 years). */
const MAX_TTL = 10 * 365 * 24 * 3600;

/** Refuses control characters and more than `maxBytes` of UTF-8, naming the field. */
function checkText(value: string, field: string, maxBytes: number): string {
  const control = CONTROL.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new EntryValidationError(`invalid ${field}: contains the control character U+${code}`);
  }
  if (Buffer.byteLength(value) > maxBytes)
    throw new EntryValidationError(`invalid ${field}: longer than ${maxBytes} bytes`);
  return value;
}

function parseId(id: Entry__Output['spiffeId'], field: string, trustDomain: string): SpiffeId {
  let parsed: SpiffeId;
  try {
    parsed = SpiffeId.parse(spiffeIdFromProto(id, field));
  } catch (error) {
    throw new EntryValidationError(`invalid ${field}: ${(error as Error).message}`);
  }
  checkText(parsed.toString(), field, MAX_SPIFFE_ID_BYTES);
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
  checkText(selector.type, 'selector: selector type', MAX_SELECTOR_TYPE_BYTES);
  checkText(selector.value, 'selector: selector value', MAX_SELECTOR_VALUE_BYTES);
  return { type: selector.type, value: selector.value };
}

/** An entry ID given to look one up or delete it: one that could never have been created is refused. */
export function validateEntryId(id: string): string {
  if (!ENTRY_ID.test(id)) {
    throw new EntryValidationError(
      'invalid entry ID: must be 1 to 255 printable ASCII characters without spaces',
    );
  }
  return id;
}

export function validateDnsName(name: string): string {
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
  if (entry.id !== '') validateEntryId(entry.id);
  if (entry.federatesWith.length > 0)
    throw new EntryValidationError('federation is not supported by this server');
  // An SVID to store needs an SVIDStore plugin on the agent, which the bundled SPIRE does not have;
  // accepting the flag would promise a copy that is never written.
  if (entry.storeSvid)
    throw new EntryValidationError(
      'store_svid is not supported by this server: it has no SVIDStore plugin to store SVIDs with',
    );
  if (entry.expiresAt < 0) throw new EntryValidationError('invalid expires_at: must not be negative');
  if (entry.hint.length > 1024) throw new EntryValidationError('invalid hint: longer than 1024 characters');
  checkText(entry.hint, 'hint', 4 * 1024);
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
