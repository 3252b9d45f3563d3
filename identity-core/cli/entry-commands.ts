/** `tspire-server entry create | show | delete`, flag for flag and line for line like spire-server's. */
import type { Command } from 'commander';
import type { Entry, Entry__Output } from '../proto/gen/spire/api/types/Entry.js';
import type { Selector } from '../proto/gen/spire/api/types/Selector.js';
import type { ListEntriesRequest } from '../proto/gen/spire/api/server/entry/v1/ListEntriesRequest.js';
import type { ListEntriesResponse__Output } from '../proto/gen/spire/api/server/entry/v1/ListEntriesResponse.js';
import type { BatchCreateEntryResponse__Output } from '../proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { BatchDeleteEntryResponse__Output } from '../proto/gen/spire/api/server/entry/v1/BatchDeleteEntryResponse.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import {
  boolFlag,
  CommandError,
  errorMessage,
  int32Value,
  intValue,
  repeatable,
  type CliIo,
  type OutputStream,
} from './cli-program.js';
import { formatUnixTime, pluralize } from './go-format.js';
import { goCodeName, unary } from '../client/grpc-call.js';
import { spiffeIdArg, spiffeIdText } from './spiffe-id-arg.js';

const LIST_PAGE_SIZE = 500;

/** "type:value"; everything after the first colon is the value ("unix:uid:1000"). */
export function parseSelector(text: string): Selector {
  const colon = text.indexOf(':');
  if (colon < 0) throw new CommandError(`selector ${JSON.stringify(text)} must be formatted as type:value`);
  return { type: text.slice(0, colon), value: text.slice(colon + 1) };
}

type PrintableEntry = Entry | Entry__Output;

/** One entry as spire-server prints it, followed by a blank line. */
export function formatEntry(entry: PrintableEntry): string {
  const lines: string[] = [];
  const line = (label: string, value: string | number | boolean) =>
    lines.push(`${label.padEnd(24)}: ${value}`);
  line('Entry ID', entry.id ? entry.id : '(none)');
  line('SPIFFE ID', spiffeIdText(entry.spiffeId));
  line('Parent ID', spiffeIdText(entry.parentId));
  line('Revision', Number(entry.revisionNumber ?? 0));
  if (entry.downstream) line('Downstream', true);
  line('X509-SVID TTL', entry.x509SvidTtl ? entry.x509SvidTtl : 'default');
  line('JWT-SVID TTL', entry.jwtSvidTtl ? entry.jwtSvidTtl : 'default');
  const expiresAt = Number(entry.expiresAt ?? 0);
  if (expiresAt !== 0) line('Expiration time', formatUnixTime(expiresAt));
  for (const selector of entry.selectors ?? []) line('Selector', `${selector.type}:${selector.value}`);
  for (const trustDomain of entry.federatesWith ?? []) line('FederatesWith', trustDomain);
  for (const dnsName of entry.dnsNames ?? []) line('DNS name', dnsName);
  if (entry.admin) line('Admin', true);
  if (entry.storeSvid) line('StoreSvid', true);
  if (entry.hint) line('Hint', entry.hint);
  if (entry.additionalAttributes?.disableX509SvidPrefetch) line('DisableX509SvidPrefetch', true);
  if (entry.additionalAttributes?.jwtSvidIncludeJti) line('JwtSvidIncludeJti', true);
  return `${lines.join('\n')}\n\n`;
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** spire-server's display order: SPIFFE ID, parent ID, TTLs, then selectors (each entry's sorted first). */
export function sortEntries(entries: Entry__Output[]): Entry__Output[] {
  const selectorKey = (s: Selector) => `${s.type}\u0000${s.value}`;
  for (const entry of entries) entry.selectors.sort((a, b) => compareText(selectorKey(a), selectorKey(b)));
  const key = (e: Entry__Output): (string | number)[] => [
    e.spiffeId?.trustDomain ?? '',
    e.spiffeId?.path ?? '',
    e.parentId?.trustDomain ?? '',
    e.parentId?.path ?? '',
    e.x509SvidTtl,
    e.jwtSvidTtl,
    e.selectors.map(selectorKey).join('\u0001'),
  ];
  return entries.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      const x = ka[i] as string | number;
      const y = kb[i] as string | number;
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : compareText(String(x), String(y));
      if (c !== 0) return c;
    }
    return 0;
  });
}

const MATCH_BEHAVIORS = {
  exact: 'MATCH_EXACT',
  any: 'MATCH_ANY',
  superset: 'MATCH_SUPERSET',
  subset: 'MATCH_SUBSET',
} as const;

function matchBehavior(text: string): (typeof MATCH_BEHAVIORS)[keyof typeof MATCH_BEHAVIORS] {
  const behavior = MATCH_BEHAVIORS[text as keyof typeof MATCH_BEHAVIORS];
  if (!behavior) throw new CommandError(`match behavior ${JSON.stringify(text)} unknown`);
  return behavior;
}

interface CreateOptions {
  socketPath: string;
  entryID?: string;
  parentID?: string;
  spiffeID?: string;
  selector?: string[];
  x509SVIDTTL?: string;
  jwtSVIDTTL?: string;
  federatesWith?: string[];
  node?: boolean;
  admin?: boolean;
  downstream?: boolean;
  entryExpiry?: string;
  dns?: string[];
  hint?: string;
}

/** Validation in spire-server's order, so the first complaint is the same one. */
export function entryFromCreateFlags(options: CreateOptions): Entry {
  const selectors = options.selector ?? [];
  const federatesWith = options.federatesWith ?? [];
  if (selectors.length < 1) throw new CommandError('at least one selector is required');
  if (options.node && federatesWith.length > 0) throw new CommandError('node entries can not federate');
  if (!options.parentID && !options.node)
    throw new CommandError('a parent ID is required if the node flag is not set');
  if (!options.spiffeID) throw new CommandError('a SPIFFE ID is required');
  const x509SvidTtl = int32Value('x509SVIDTTL', options.x509SVIDTTL, 0);
  const jwtSvidTtl = int32Value('jwtSVIDTTL', options.jwtSVIDTTL, 0);
  if (x509SvidTtl < 0) throw new CommandError('a positive x509-SVID TTL is required');
  if (jwtSvidTtl < 0) throw new CommandError('a positive JWT-SVID TTL is required');
  const expiresAt = intValue('entryExpiry', options.entryExpiry, 0);

  const spiffeId = spiffeIdArg(options.spiffeID);
  const parentId = options.node
    ? { trustDomain: spiffeId.trustDomain, path: '/spire/server' }
    : spiffeIdArg(options.parentID ?? '');
  return {
    id: options.entryID ?? '',
    spiffeId,
    parentId,
    selectors: selectors.map(parseSelector),
    x509SvidTtl,
    jwtSvidTtl,
    federatesWith,
    admin: options.admin ?? false,
    downstream: options.downstream ?? false,
    expiresAt,
    dnsNames: options.dns ?? [],
    hint: options.hint ?? '',
  };
}

function printCreateResults(io: CliIo, requested: Entry[], response: BatchCreateEntryResponse__Output): void {
  const failed: string[] = [];
  response.results.forEach((result, index) => {
    const code = result.status?.code ?? 0;
    if (code === 0 && result.entry) {
      io.stdout.write(formatEntry(result.entry));
      return;
    }
    // The server leaves failed entries out of its answer; show what was asked for.
    const asked = requested[index] ?? {};
    failed.push(
      `Failed to create the following entry (code: ${goCodeName(code)}, msg: ${JSON.stringify(result.status?.message ?? '')}):\n` +
        formatEntry(asked),
    );
  });
  for (const text of failed) io.stderr.write(text);
  if (failed.length > 0) throw new CommandError('failed to create one or more entries');
}

function printDeleteResults(
  out: OutputStream,
  err: OutputStream,
  response: BatchDeleteEntryResponse__Output,
): void {
  const succeeded = response.results.filter((r) => (r.status?.code ?? 0) === 0);
  const failed = response.results.filter((r) => (r.status?.code ?? 0) !== 0);
  for (const result of succeeded) out.write(`Deleted entry with ID: ${result.id}\n`);
  if (succeeded.length > 0) out.write('\n\n');
  for (const result of failed) {
    err.write(
      `Failed to delete entry with ID ${result.id} (code: ${goCodeName(result.status?.code ?? 0)}, msg: ${JSON.stringify(result.status?.message ?? '')})\n`,
    );
  }
  if (failed.length > 0) {
    out.write('\n\n');
    out.write(
      succeeded.length === 0
        ? `Failed to delete ${failed.length} entries\n`
        : `Deleted ${succeeded.length} entries successfully, but failed to delete ${failed.length} entries\n`,
    );
    throw new CommandError('failed to delete one or more entries');
  }
  out.write(`Deleted ${succeeded.length} entries successfully\n`);
}

interface ShowOptions {
  socketPath: string;
  entryID?: string;
  parentID?: string;
  spiffeID?: string;
  selector?: string[];
  federatesWith?: string[];
  matchSelectorsOn: string;
  matchFederatesWithOn: string;
  downstream?: boolean;
  hint?: string;
}

/** The ListEntries filter for `entry show` flags. */
export function listFilterFromShowFlags(options: ShowOptions): NonNullable<ListEntriesRequest['filter']> {
  const filter: NonNullable<ListEntriesRequest['filter']> = {};
  if (options.parentID)
    filter.byParentId = spiffeIdArg(
      options.parentID,
      `error parsing parent ID ${JSON.stringify(options.parentID)}`,
    );
  if (options.spiffeID)
    filter.bySpiffeId = spiffeIdArg(
      options.spiffeID,
      `error parsing SPIFFE ID ${JSON.stringify(options.spiffeID)}`,
    );
  const selectors = options.selector ?? [];
  if (selectors.length > 0) {
    const match = matchBehavior(options.matchSelectorsOn);
    const parsed = selectors.map((text) => {
      try {
        return parseSelector(text);
      } catch (error) {
        throw new CommandError(`error parsing selectors: ${errorMessage(error)}`);
      }
    });
    filter.bySelectors = { selectors: parsed, match };
  }
  const federatesWith = options.federatesWith ?? [];
  if (federatesWith.length > 0) {
    filter.byFederatesWith = {
      trustDomains: federatesWith,
      match: matchBehavior(options.matchFederatesWithOn),
    };
  }
  if (options.hint) filter.byHint = { value: options.hint };
  // spire-server always sends by_downstream, which hides downstream entries unless
  // -downstream is given; here the filter applies only when asked for.
  if (options.downstream) filter.byDownstream = { value: true };
  return filter;
}

export function addEntryCommands(program: Command, io: CliIo): void {
  const entry = program.command('entry').description('Manages registration entries');

  entry
    .command('create')
    .description('Creates registration entries')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--entryID <id>', 'A custom ID for this registration entry (optional)')
    .option('--parentID <id>', "The SPIFFE ID of this record's parent")
    .option('--spiffeID <id>', 'The SPIFFE ID that this record represents')
    .addOption(
      repeatable(
        '--selector <type:value>',
        'A colon-delimited type:value selector. Can be used more than once',
      ),
    )
    .option(
      '--x509SVIDTTL <seconds>',
      'The lifetime, in seconds, for x509-SVIDs issued based on this registration entry.',
    )
    .option(
      '--jwtSVIDTTL <seconds>',
      'The lifetime, in seconds, for JWT-SVIDs issued based on this registration entry.',
    )
    .addOption(
      repeatable(
        '--federatesWith <id>',
        'SPIFFE ID of a trust domain to federate with. Can be used more than once',
      ),
    )
    .addOption(boolFlag('node', 'If set, this entry will be applied to matching nodes rather than workloads'))
    .addOption(
      boolFlag(
        'admin',
        "If set, the SPIFFE ID in this entry will be granted access to the server's management APIs",
      ),
    )
    .addOption(boolFlag('downstream', 'If set, the entry describes a downstream SPIRE server'))
    .option(
      '--entryExpiry <seconds>',
      'An expiry, from epoch in seconds, for the resulting registration entry to be pruned',
    )
    .addOption(
      repeatable(
        '--dns <name>',
        'A DNS name that will be included in SVIDs issued based on this entry. Can be used more than once',
      ),
    )
    .option('--hint <hint>', 'The entry hint, used to disambiguate entries with the same SPIFFE ID')
    .action(async (options: CreateOptions) => {
      const requested = [entryFromCreateFlags(options)];
      const response = await withAdminApi(options.socketPath, (api) => {
        const client = api.entry();
        return unary<BatchCreateEntryResponse__Output>((done) =>
          client.BatchCreateEntry({ entries: requested }, done),
        );
      });
      printCreateResults(io, requested, response);
    });

  entry
    .command('show')
    .description('Displays configured registration entries')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--entryID <id>', 'The Entry ID of the records to show')
    .option('--parentID <id>', 'The Parent ID of the records to show')
    .option('--spiffeID <id>', 'The SPIFFE ID of the records to show')
    .addOption(
      repeatable(
        '--selector <type:value>',
        'A colon-delimited type:value selector. Can be used more than once',
      ),
    )
    .addOption(
      repeatable(
        '--federatesWith <id>',
        'SPIFFE ID of a trust domain an entry is federate with. Can be used more than once',
      ),
    )
    .option(
      '--matchSelectorsOn <mode>',
      'The match mode used when filtering by selectors: exact, any, superset or subset',
      'superset',
    )
    .option(
      '--matchFederatesWithOn <mode>',
      'The match mode used when filtering by federates with: exact, any, superset or subset',
      'superset',
    )
    .addOption(boolFlag('downstream', 'Only show entries that describe a downstream SPIRE server'))
    .option('--hint <hint>', 'The Hint of the records to show (optional)')
    .action(async (options: ShowOptions) => {
      if (options.entryID && (options.parentID || options.spiffeID || (options.selector ?? []).length > 0)) {
        throw new CommandError("the -entryID flag can't be combined with others");
      }
      const filter = options.entryID ? undefined : listFilterFromShowFlags(options);
      const entries = await withAdminApi(options.socketPath, async (api) => {
        const client = api.entry();
        if (options.entryID) {
          const id = options.entryID;
          try {
            return [await unary<Entry__Output>((done) => client.GetEntry({ id }, done))];
          } catch (error) {
            throw new CommandError(`error fetching entry ID ${id}: ${errorMessage(error)}`);
          }
        }
        const all: Entry__Output[] = [];
        let pageToken = '';
        do {
          let page: ListEntriesResponse__Output;
          try {
            page = await unary<ListEntriesResponse__Output>((done) =>
              client.ListEntries({ filter, pageSize: LIST_PAGE_SIZE, pageToken }, done),
            );
          } catch (error) {
            throw new CommandError(`error fetching entries: ${errorMessage(error)}`);
          }
          all.push(...page.entries);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return all;
      });
      io.stdout.write(`Found ${pluralize(entries.length, 'entry', 'entries')}\n`);
      for (const e of sortEntries(entries)) io.stdout.write(formatEntry(e));
    });

  entry
    .command('delete')
    .description('Deletes registration entries')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--entryID <id>', 'The Registration Entry ID of the record to delete.')
    .action(async (options: { socketPath: string; entryID?: string }) => {
      if (!options.entryID) throw new CommandError('an entry ID is required');
      const ids = [options.entryID];
      const response = await withAdminApi(options.socketPath, (api) => {
        const client = api.entry();
        return unary<BatchDeleteEntryResponse__Output>((done) => client.BatchDeleteEntry({ ids }, done));
      });
      printDeleteResults(io.stdout, io.stderr, response);
    });
}
