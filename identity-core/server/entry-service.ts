import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Datastore } from '../datastore/datastore.js';
import { AlreadyExistsError, NotFoundError } from '../datastore/errors.js';
import type { EntryHandlers } from '../proto/services.js';
import type { BatchCreateEntryResponse } from '../proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type {
  BatchUpdateEntryResponse,
  _spire_api_server_entry_v1_BatchUpdateEntryResponse_Result as UpdateResult,
} from '../proto/gen/spire/api/server/entry/v1/BatchUpdateEntryResponse.js';
import type { BatchDeleteEntryResponse } from '../proto/gen/spire/api/server/entry/v1/BatchDeleteEntryResponse.js';
import type { ListEntriesResponse } from '../proto/gen/spire/api/server/entry/v1/ListEntriesResponse.js';
import type { GetAuthorizedEntriesResponse } from '../proto/gen/spire/api/server/entry/v1/GetAuthorizedEntriesResponse.js';
import type { CountEntriesResponse } from '../proto/gen/spire/api/server/entry/v1/CountEntriesResponse.js';
import type { Entry, Entry__Output } from '../proto/gen/spire/api/types/Entry.js';
import { applyInputMask } from '../proto/entry-mask.js';
import type { ListEntriesRequest__Output } from '../proto/gen/spire/api/server/entry/v1/ListEntriesRequest.js';
import type { RegistrationEntry } from '../datastore/records.js';
import { entryToProto, spiffeIdFromProto } from '../proto/convert.js';
import { RpcError } from '../transport/rpc-error.js';
import { bidiStream, unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';
import type { EntryCache } from './entry-cache.js';
import { DEFAULT_ENTRY_PAGE_SIZE, syncAuthorizedEntries } from './entry-sync.js';
import {
  EntryValidationError,
  matchesSelectorFilter,
  validateEntryId,
  validateNewEntry,
} from './entry-validation.js';

export interface EntryServiceDeps {
  auth: ApiAuthorization;
  datastore: Datastore;
  cache: EntryCache;
  trustDomain: string;
  observe: RpcObserver;
  logger: Logger;
  /** SyncAuthorizedEntries' page size (SPIRE's 500 unless given). */
  entryPageSize?: number;
}

const SERVICE = 'entry.v1.Entry';
const MAX_BATCH = 500;
const ok = { code: grpc.status.OK, message: 'OK' };

function filterFromRequest(filter: ListEntriesRequest__Output['filter']): (e: RegistrationEntry) => boolean {
  if (!filter) return () => true;
  let spiffeId: string | undefined;
  let parentId: string | undefined;
  try {
    if (filter.bySpiffeId) spiffeId = spiffeIdFromProto(filter.bySpiffeId, 'by_spiffe_id');
    if (filter.byParentId) parentId = spiffeIdFromProto(filter.byParentId, 'by_parent_id');
  } catch (error) {
    throw RpcError.invalidArgument(`malformed filter: ${(error as Error).message}`);
  }
  const selectors =
    filter.bySelectors && filter.bySelectors.selectors.length > 0 ? filter.bySelectors : undefined;
  return (e) =>
    (spiffeId === undefined || e.spiffeId === spiffeId) &&
    (parentId === undefined || e.parentId === parentId) &&
    (selectors === undefined || matchesSelectorFilter(e.selectors, selectors)) &&
    (filter.byHint === null || e.hint === filter.byHint.value) &&
    (filter.byDownstream === null || e.downstream === filter.byDownstream.value);
}

/** entry.v1: registration entries, written by operators on the admin socket, read by agents over mTLS. */
export function entryService(deps: EntryServiceDeps): Partial<EntryHandlers> {
  const { auth, datastore, cache, trustDomain, observe, logger } = deps;

  async function listMatching(filter: ListEntriesRequest__Output['filter']): Promise<RegistrationEntry[]> {
    const predicate = filterFromRequest(filter);
    try {
      return (await datastore.entries.listAll()).filter(predicate);
    } catch (error) {
      throw RpcError.internal(`failed to list entries: ${(error as Error).message}`);
    }
  }

  async function updateOne(
    requested: Entry__Output,
    mask: Parameters<typeof applyInputMask>[2],
  ): Promise<UpdateResult> {
    const invalid = (message: string) => ({
      status: { code: grpc.status.INVALID_ARGUMENT, message: `failed to convert entry: ${message}` },
    });
    if (requested.id === '') return invalid('missing entry ID');
    let existing: RegistrationEntry | undefined;
    try {
      validateEntryId(requested.id);
      existing = await datastore.entries.get(requested.id);
    } catch (error) {
      if (error instanceof EntryValidationError) return invalid(error.message);
      return {
        status: { code: grpc.status.INTERNAL, message: `failed to fetch entry: ${(error as Error).message}` },
      };
    }
    if (!existing)
      return { status: { code: grpc.status.NOT_FOUND, message: 'failed to update entry: entry not found' } };
    const current = {
      federatesWith: [],
      storeSvid: false,
      additionalAttributes: null,
      ...entryToProto(existing),
    } as Entry__Output;
    let valid;
    try {
      valid = validateNewEntry(applyInputMask(requested, current, mask), trustDomain);
    } catch (error) {
      if (error instanceof EntryValidationError) return invalid(error.message);
      throw error;
    }
    try {
      const updated = await datastore.entries.update(existing.id, valid);
      cache.upsert(updated);
      logger.info({ entry_id: updated.id, spiffe_id: updated.spiffeId }, 'Updated registration entry');
      return { status: ok, entry: entryToProto(updated) };
    } catch (error) {
      if (error instanceof AlreadyExistsError)
        return {
          status: {
            code: grpc.status.ALREADY_EXISTS,
            message: 'failed to update entry: similar entry already exists',
          },
        };
      if (error instanceof NotFoundError)
        return {
          status: { code: grpc.status.NOT_FOUND, message: 'failed to update entry: entry not found' },
        };
      return {
        status: {
          code: grpc.status.INTERNAL,
          message: `failed to update entry: ${(error as Error).message}`,
        },
      };
    }
  }

  return {
    BatchCreateEntry: unary(
      SERVICE,
      'BatchCreateEntry',
      observe,
      async (request, call): Promise<BatchCreateEntryResponse> => {
        auth.local(call, 'BatchCreateEntry');
        if (request.entries.length > MAX_BATCH)
          throw RpcError.invalidArgument(`too many entries: at most ${MAX_BATCH} per call`);
        const results = [];
        for (const requested of request.entries) {
          let valid;
          try {
            valid = validateNewEntry(requested, trustDomain);
          } catch (error) {
            if (!(error instanceof EntryValidationError)) throw error;
            results.push({
              status: {
                code: grpc.status.INVALID_ARGUMENT,
                message: `failed to convert entry: ${error.message}`,
              },
            });
            continue;
          }
          try {
            const created = await datastore.entries.create(valid);
            cache.upsert(created);
            logger.info({ entry_id: created.id, spiffe_id: created.spiffeId }, 'Created registration entry');
            results.push({ status: ok, entry: entryToProto(created) });
          } catch (error) {
            if (error instanceof AlreadyExistsError) {
              const existing = (error as AlreadyExistsError & { existing?: RegistrationEntry }).existing;
              results.push({
                status: { code: grpc.status.ALREADY_EXISTS, message: 'similar entry already exists' },
                ...(existing ? { entry: entryToProto(existing) } : {}),
              });
            } else {
              results.push({
                status: {
                  code: grpc.status.INTERNAL,
                  message: `failed to create entry: ${(error as Error).message}`,
                },
              });
            }
          }
        }
        return { results };
      },
    ),

    BatchUpdateEntry: unary(
      SERVICE,
      'BatchUpdateEntry',
      observe,
      async (request, call): Promise<BatchUpdateEntryResponse> => {
        auth.local(call, 'BatchUpdateEntry');
        if (request.entries.length > MAX_BATCH)
          throw RpcError.invalidArgument(`too many entries: at most ${MAX_BATCH} per call`);
        const results = [];
        for (const requested of request.entries) {
          results.push(await updateOne(requested, request.inputMask));
        }
        return { results };
      },
    ),

    BatchDeleteEntry: unary(
      SERVICE,
      'BatchDeleteEntry',
      observe,
      async (request, call): Promise<BatchDeleteEntryResponse> => {
        auth.local(call, 'BatchDeleteEntry');
        if (request.ids.length > MAX_BATCH)
          throw RpcError.invalidArgument(`too many IDs: at most ${MAX_BATCH} per call`);
        const results = [];
        for (const id of request.ids) {
          if (id === '') {
            results.push({ id, status: { code: grpc.status.INVALID_ARGUMENT, message: 'missing entry ID' } });
            continue;
          }
          try {
            validateEntryId(id);
          } catch (error) {
            results.push({
              id,
              status: { code: grpc.status.INVALID_ARGUMENT, message: (error as Error).message },
            });
            continue;
          }
          try {
            await datastore.entries.delete(id);
            cache.remove(id);
            results.push({ id, status: ok });
          } catch (error) {
            if (error instanceof NotFoundError)
              results.push({ id, status: { code: grpc.status.NOT_FOUND, message: 'entry not found' } });
            else
              results.push({
                id,
                status: {
                  code: grpc.status.INTERNAL,
                  message: `failed to delete entry: ${(error as Error).message}`,
                },
              });
          }
        }
        return { results };
      },
    ),

    GetEntry: unary(SERVICE, 'GetEntry', observe, async (request, call): Promise<Entry> => {
      auth.local(call, 'GetEntry');
      if (request.id === '') throw RpcError.invalidArgument('missing ID');
      try {
        validateEntryId(request.id);
      } catch (error) {
        throw RpcError.invalidArgument((error as Error).message);
      }
      let entry: RegistrationEntry | undefined;
      try {
        entry = await datastore.entries.get(request.id);
      } catch (error) {
        throw RpcError.internal(`failed to fetch entry: ${(error as Error).message}`);
      }
      if (!entry) throw RpcError.notFound('entry not found');
      return entryToProto(entry);
    }),

    ListEntries: unary(
      SERVICE,
      'ListEntries',
      observe,
      async (request, call): Promise<ListEntriesResponse> => {
        auth.local(call, 'ListEntries');
        if (request.pageSize < 0) throw RpcError.invalidArgument('page size must not be negative');
        const all = await listMatching(request.filter);
        const start = request.pageToken === '' ? 0 : Number(request.pageToken);
        if (!Number.isInteger(start) || start < 0)
          throw RpcError.invalidArgument('could not parse page token');
        const end = request.pageSize > 0 ? start + request.pageSize : all.length;
        return {
          entries: all.slice(start, end).map(entryToProto),
          nextPageToken: end < all.length ? String(end) : '',
        };
      },
    ),

    CountEntries: unary(
      SERVICE,
      'CountEntries',
      observe,
      async (request, call): Promise<CountEntriesResponse> => {
        auth.local(call, 'CountEntries');
        return { count: (await listMatching(request.filter)).length };
      },
    ),

    GetAuthorizedEntries: unary(
      SERVICE,
      'GetAuthorizedEntries',
      observe,
      async (_request, call): Promise<GetAuthorizedEntriesResponse> => {
        const { agentId } = await auth.agent(call);
        return { entries: cache.authorizedEntries(agentId).map(entryToProto) };
      },
    ),

    SyncAuthorizedEntries: bidiStream(SERVICE, 'SyncAuthorizedEntries', observe, async (call) => {
      const { agentId } = await auth.agent(call);
      await syncAuthorizedEntries(
        call,
        cache.authorizedEntries(agentId),
        deps.entryPageSize ?? DEFAULT_ENTRY_PAGE_SIZE,
      );
    }),
  };
}
