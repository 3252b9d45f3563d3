import type { Entry, Entry__Output } from './gen/spire/api/types/Entry.js';
import type { EntryMask__Output } from './gen/spire/api/types/EntryMask.js';

/** Entry fields an EntryMask can leave out (the id always goes). */
const MASKABLE = [
  'spiffeId',
  'parentId',
  'selectors',
  'x509SvidTtl',
  'federatesWith',
  'admin',
  'downstream',
  'expiresAt',
  'dnsNames',
  'revisionNumber',
  'storeSvid',
  'jwtSvidTtl',
  'hint',
  'createdAt',
  'additionalAttributes',
] as const satisfies readonly (keyof Entry & keyof EntryMask__Output)[];

/** The entry with only the fields the mask selects, as SPIRE answers; no mask means every field. */
export function maskEntry(entry: Entry, mask: EntryMask__Output | null | undefined): Entry {
  if (!mask) return entry;
  const masked: Entry = { id: entry.id };
  for (const field of MASKABLE) {
    if (mask[field] && entry[field] !== undefined) (masked as Record<string, unknown>)[field] = entry[field];
  }
  return masked;
}

/**
 * An update's view of an entry: the fields the input mask selects from `requested`, the rest as
 * `current` has them; no mask means every field from `requested`, as SPIRE's BatchUpdateEntry reads it.
 */
export function applyInputMask(
  requested: Entry__Output,
  current: Entry__Output,
  mask: EntryMask__Output | null | undefined,
): Entry__Output {
  if (!mask) return requested;
  const merged: Entry__Output = { ...current, id: requested.id };
  for (const field of MASKABLE) {
    if (mask[field]) (merged as unknown as Record<string, unknown>)[field] = requested[field];
  }
  return merged;
}
