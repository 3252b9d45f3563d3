import type * as grpc from '@grpc/grpc-js';
import type { RegistrationEntry } from '../datastore/records.js';
import type { SyncAuthorizedEntriesRequest__Output } from '../proto/gen/spire/api/server/entry/v1/SyncAuthorizedEntriesRequest.js';
import type { SyncAuthorizedEntriesResponse } from '../proto/gen/spire/api/server/entry/v1/SyncAuthorizedEntriesResponse.js';
import { entryToProto } from '../proto/convert.js';
import { maskEntry } from '../proto/entry-mask.js';
import { RpcError } from '../transport/rpc-error.js';

/** SPIRE's page size for SyncAuthorizedEntries: a larger set goes as revisions first. */
export const DEFAULT_ENTRY_PAGE_SIZE = 500;

export type SyncStream = grpc.ServerDuplexStream<
  SyncAuthorizedEntriesRequest__Output,
  SyncAuthorizedEntriesResponse
>;

/**
 * One SyncAuthorizedEntries exchange over `entries` (the caller's authorized entries), as SPIRE's
 * server runs it: the first request carries the output mask; a set that fits in one page is sent
 * whole in one response; a larger one is sent as revisions (id, revision number, creation time)
 * in pages flagged `more`, after which every request names ids and gets those entries back in
 * pages, the last one not flagged. The exchange ends when the agent closes its side.
 */
export async function syncAuthorizedEntries(
  call: SyncStream,
  entries: RegistrationEntry[],
  pageSize: number,
): Promise<void> {
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new Error(`entry page size must be a positive integer, got ${pageSize}`);
  const receive = requestReader(call);
  const send = async (response: SyncAuthorizedEntriesResponse): Promise<void> => {
    // A cancelled call never drains: its close ends the wait, and the next read sees it gone.
    if (!call.write(response))
      await new Promise<void>((resolve) => {
        call.once('drain', resolve);
        call.once('close', resolve);
      });
  };

  const first = await receive();
  if (!first) {
    if (call.cancelled) return;
    throw RpcError.invalidArgument('failed to receive the initial request: the stream ended');
  }
  if (first.ids.length > 0)
    throw RpcError.invalidArgument('specifying IDs on initial request is not supported');
  // The agent compares revisions to decide what to ask for, so they must always come back.
  const mask = first.outputMask;
  if (mask && !mask.revisionNumber) throw RpcError.invalidArgument('revision number cannot be masked');
  const full = (entry: RegistrationEntry) => maskEntry(entryToProto(entry), mask);

  if (entries.length <= pageSize) {
    await send({ entries: entries.map(full), entryRevisions: [], more: false });
    return;
  }

  await sendPaged(entries, pageSize, (page, more) =>
    send({
      entryRevisions: page.map((e) => ({
        id: e.id,
        revisionNumber: e.revisionNumber,
        createdAt: e.createdAt,
      })),
      entries: [],
      more,
    }),
  );

  const byId = new Map(entries.map((e) => [e.id, e]));
  for (;;) {
    const request = await receive();
    if (!request) return;
    // Answered in id order, as SPIRE does; ids the agent may no longer hold are skipped.
    const wanted = [...new Set(request.ids)]
      .sort()
      .map((id) => byId.get(id))
      .filter((e): e is RegistrationEntry => e !== undefined);
    await sendPaged(wanted, pageSize, (page, more) =>
      send({ entries: page.map(full), entryRevisions: [], more }),
    );
  }
}

/** Sends `items` in pages of `pageSize`, all but the last flagged `more`; nothing still sends one empty page. */
async function sendPaged<T>(
  items: T[],
  pageSize: number,
  sendPage: (page: T[], more: boolean) => Promise<void>,
): Promise<void> {
  let sent = 0;
  do {
    const page = items.slice(sent, sent + pageSize);
    sent += page.length;
    await sendPage(page, sent < items.length);
  } while (sent < items.length);
}

/**
 * Reads the stream's requests one at a time; undefined once the agent has closed its side or gone
 * away (not an async iterator: that destroys the stream at its end, before the status is sent).
 */
function requestReader(call: SyncStream): () => Promise<SyncAuthorizedEntriesRequest__Output | undefined> {
  const queued: SyncAuthorizedEntriesRequest__Output[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  call.on('data', (request: SyncAuthorizedEntriesRequest__Output) => {
    queued.push(request);
    notify();
  });
  call.on('end', () => {
    ended = true;
    notify();
  });
  call.on('cancelled', () => {
    ended = true;
    notify();
  });
  call.on('error', (error: Error) => {
    failure = error;
    notify();
  });
  return async () => {
    while (queued.length === 0 && !ended && !failure) await new Promise<void>((resolve) => (wake = resolve));
    if (queued.length > 0) return queued.shift();
    if (failure && !call.cancelled) throw failure;
    return undefined;
  };
}
