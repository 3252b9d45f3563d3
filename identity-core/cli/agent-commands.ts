/** `tspire-server agent list | ban | evict`: operator views and actions on attested agents. */
import type { Command } from 'commander';
import type { Agent__Output } from '../proto/gen/spire/api/types/Agent.js';
import type { ListAgentsRequest } from '../proto/gen/spire/api/server/agent/v1/ListAgentsRequest.js';
import type { ListAgentsResponse__Output } from '../proto/gen/spire/api/server/agent/v1/ListAgentsResponse.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import { CommandError, errorMessage, repeatable, type CliIo } from './cli-program.js';
import { parseSelector } from './entry-commands.js';
import { parseGoBool } from './go-flags.js';
import { formatUnixTime, pluralize } from './go-format.js';
import { unary } from '../client/grpc-call.js';
import { spiffeIdArg, spiffeIdText } from './spiffe-id-arg.js';

const LIST_PAGE_SIZE = 1000;

export function formatAgent(agent: Agent__Output): string {
  const lines = [
    `SPIFFE ID         : ${spiffeIdText(agent.id)}`,
    `Attestation type  : ${agent.attestationType}`,
    `Expiration time   : ${formatUnixTime(agent.x509svidExpiresAt)}`,
    agent.banned ? `Banned            : true` : `Serial number     : ${agent.x509svidSerialNumber}`,
    `Can re-attest     : ${agent.canReattest}`,
  ];
  if (agent.agentVersion) lines.push(`Agent version     : ${agent.agentVersion}`);
  return `${lines.join('\n')}\n\n`;
}

interface ListOptions {
  socketPath: string;
  selector?: string[];
  matchSelectorsOn: string;
  attestationType?: string;
  banned?: string;
  canReattest?: string;
}

const SELECTOR_MATCH = {
  exact: 'MATCH_EXACT',
  any: 'MATCH_ANY',
  superset: 'MATCH_SUPERSET',
  subset: 'MATCH_SUBSET',
} as const;

function listFilter(options: ListOptions): NonNullable<ListAgentsRequest['filter']> {
  const filter: NonNullable<ListAgentsRequest['filter']> = {};
  const selectors = options.selector ?? [];
  if (selectors.length > 0) {
    const match = SELECTOR_MATCH[options.matchSelectorsOn as keyof typeof SELECTOR_MATCH];
    if (!match) throw new CommandError('unsupported match behavior');
    filter.bySelectorMatch = {
      selectors: selectors.map((text) => {
        try {
          return parseSelector(text);
        } catch (error) {
          throw new CommandError(`error parsing selector ${JSON.stringify(text)}: ${errorMessage(error)}`);
        }
      }),
      match,
    };
  }
  if (options.attestationType) filter.byAttestationType = options.attestationType;
  // As in spire-server, "true"/"false" filter and anything else lists all.
  const banned = options.banned === undefined ? undefined : parseGoBool(options.banned);
  if (banned !== undefined) filter.byBanned = { value: banned };
  const canReattest = options.canReattest === undefined ? undefined : parseGoBool(options.canReattest);
  if (canReattest !== undefined) filter.byCanReattest = { value: canReattest };
  return filter;
}

function requiredAgentId(spiffeID: string | undefined) {
  if (!spiffeID) throw new CommandError('a SPIFFE ID is required');
  return spiffeIdArg(spiffeID);
}

export function addAgentCommands(program: Command, io: CliIo): void {
  const agent = program.command('agent').description('Manages attested agents');

  agent
    .command('list')
    .description('Lists attested agents and their SPIFFE IDs')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .addOption(
      repeatable(
        '--selector <type:value>',
        'A colon-delimited type:value selector. Can be used more than once',
      ),
    )
    .option(
      '--matchSelectorsOn <mode>',
      'The match mode used when filtering by selectors: exact, any, superset or subset',
      'superset',
    )
    .option('--attestationType <type>', 'Filter by attestation type, like join_token')
    .option('--banned <bool>', "'true': banned agents, 'false': agents not banned, other values: all")
    .option(
      '--canReattest <bool>',
      "'true': agents that can re-attest, 'false': agents that cannot, other values: all",
    )
    .action(async (options: ListOptions) => {
      const filter = listFilter(options);
      const agents = await withAdminApi(options.socketPath, async (api) => {
        const client = api.agent();
        const all: Agent__Output[] = [];
        let pageToken = '';
        do {
          const page = await unary<ListAgentsResponse__Output>((done) =>
            client.ListAgents({ filter, pageSize: LIST_PAGE_SIZE, pageToken }, done),
          );
          all.push(...page.agents);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return all;
      });
      if (agents.length === 0) {
        io.stdout.write('No attested agents found\n');
        return;
      }
      io.stdout.write(`Found ${pluralize(agents.length, 'attested agent', 'attested agents')}:\n\n`);
      for (const a of agents) io.stdout.write(formatAgent(a));
    });

  agent
    .command('ban')
    .description('Ban an attested agent given its SPIFFE ID')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--spiffeID <id>', 'The SPIFFE ID of the agent to ban (agent identity)')
    .action(async (options: { socketPath: string; spiffeID?: string }) => {
      const id = requiredAgentId(options.spiffeID);
      await withAdminApi(options.socketPath, (api) => {
        const client = api.agent();
        return unary((done) => client.BanAgent({ id }, done));
      });
      io.stdout.write('Agent banned successfully\n');
    });

  agent
    .command('evict')
    .description('Evicts an attested agent given its SPIFFE ID')
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .option('--spiffeID <id>', 'The SPIFFE ID of the agent to evict (agent identity)')
    .action(async (options: { socketPath: string; spiffeID?: string }) => {
      const id = requiredAgentId(options.spiffeID);
      await withAdminApi(options.socketPath, (api) => {
        const client = api.agent();
        return unary((done) => client.DeleteAgent({ id }, done));
      });
      io.stdout.write('Agent evicted successfully\n');
    });
}
