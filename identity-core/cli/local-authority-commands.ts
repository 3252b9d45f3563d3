/**
 * `tspire-server localauthority x509|jwt show|prepare|activate|taint|revoke` and
 * `upstreamauthority taint|revoke`: forced rotation of the server's signing keys.
 */
import type { Command } from 'commander';
import type { AuthorityState__Output } from '../proto/gen/spire/api/server/localauthority/v1/AuthorityState.js';
import type { LocalAuthorityClient } from '../proto/services.js';
import { DEFAULT_SERVER_SOCKET_PATH, withAdminApi } from '../client/admin-api.js';
import { CommandError, errorMessage, type CliIo } from './cli-program.js';
import { formatUnixTime } from './go-format.js';
import { unary } from '../client/grpc-call.js';

type Kind = 'x509' | 'jwt';

const LABEL: Record<Kind, string> = { x509: 'X.509', jwt: 'JWT' };

export function formatAuthorityState(kind: Kind, state: AuthorityState__Output): string {
  const lines = [`  Authority ID: ${state.authorityId}`, `  Expires at: ${formatUnixTime(state.expiresAt)}`];
  if (kind === 'x509') {
    lines.push(
      state.upstreamAuthoritySubjectKeyId
        ? `  Upstream authority Subject Key ID: ${state.upstreamAuthoritySubjectKeyId}`
        : '  Upstream authority ID: No upstream authority',
    );
  }
  return `${lines.join('\n')}\n`;
}

interface ShowResponse {
  active: AuthorityState__Output | null;
  prepared: AuthorityState__Output | null;
  old: AuthorityState__Output | null;
}

export function formatAuthorityStates(kind: Kind, response: ShowResponse): string {
  const label = LABEL[kind];
  const slot = (name: string, state: AuthorityState__Output | null) =>
    `${name} ${label} authority:\n` +
    (state ? formatAuthorityState(kind, state) : `  No ${name.toLowerCase()} ${label} authority found\n`);
  return [
    slot('Active', response.active),
    slot('Prepared', response.prepared),
    slot('Old', response.old),
  ].join('\n');
}

type Action = 'prepare' | 'activate' | 'taint' | 'revoke';

const PAST: Record<Action, string> = {
  prepare: 'Prepared',
  activate: 'Activated',
  taint: 'Tainted',
  revoke: 'Revoked',
};

type State = AuthorityState__Output | null;

/** One call per (kind, action); each resolves to the authority it acted on. */
async function callAction(
  client: LocalAuthorityClient,
  kind: Kind,
  action: Action,
  authorityId: string,
): Promise<State> {
  const request = { authorityId };
  switch (`${kind}:${action}` as const) {
    case 'x509:prepare':
      return (await unary<{ preparedAuthority: State }>((done) => client.PrepareX509Authority({}, done)))
        .preparedAuthority;
    case 'x509:activate':
      return (
        await unary<{ activatedAuthority: State }>((done) => client.ActivateX509Authority(request, done))
      ).activatedAuthority;
    case 'x509:taint':
      return (await unary<{ taintedAuthority: State }>((done) => client.TaintX509Authority(request, done)))
        .taintedAuthority;
    case 'x509:revoke':
      return (await unary<{ revokedAuthority: State }>((done) => client.RevokeX509Authority(request, done)))
        .revokedAuthority;
    case 'jwt:prepare':
      return (await unary<{ preparedAuthority: State }>((done) => client.PrepareJWTAuthority({}, done)))
        .preparedAuthority;
    case 'jwt:activate':
      return (
        await unary<{ activatedAuthority: State }>((done) => client.ActivateJWTAuthority(request, done))
      ).activatedAuthority;
    case 'jwt:taint':
      return (await unary<{ taintedAuthority: State }>((done) => client.TaintJWTAuthority(request, done)))
        .taintedAuthority;
    case 'jwt:revoke':
      return (await unary<{ revokedAuthority: State }>((done) => client.RevokeJWTAuthority(request, done)))
        .revokedAuthority;
  }
}

function addKind(parent: Command, kind: Kind, io: CliIo): void {
  const label = LABEL[kind];
  const group = parent.command(kind).description(`Manages the local ${label} authorities`);

  group
    .command('show')
    .description(`Shows the local ${label} authorities`)
    .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
    .action(async (options: { socketPath: string }) => {
      const response = await withAdminApi(options.socketPath, async (api) => {
        const client = api.localAuthority();
        try {
          return kind === 'x509'
            ? await unary<ShowResponse>((done) => client.GetX509AuthorityState({}, done))
            : await unary<ShowResponse>((done) => client.GetJWTAuthorityState({}, done));
        } catch (error) {
          throw new CommandError(`could not get ${label} authorities: ${errorMessage(error)}`);
        }
      });
      io.stdout.write(formatAuthorityStates(kind, response));
    });

  const descriptions: Record<Action, string> = {
    prepare: `Prepares a new ${label} authority for use and adds it to the bundle`,
    activate: `Activates a prepared ${label} authority for all signing from now on`,
    taint: `Marks the previously active ${label} authority as tainted`,
    revoke: `Revokes the tainted ${label} authority, removing it from the bundle`,
  };
  for (const action of ['prepare', 'activate', 'taint', 'revoke'] as const) {
    const command = group
      .command(action)
      .description(descriptions[action])
      .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH);
    if (action !== 'prepare')
      command.option('--authorityID <id>', `The authority ID of the ${label} authority to ${action}`);
    command.action(async (options: { socketPath: string; authorityID?: string }) => {
      if (action !== 'prepare' && !options.authorityID) throw new CommandError('an authority ID is required');
      const state = await withAdminApi(options.socketPath, async (api) => {
        try {
          return await callAction(api.localAuthority(), kind, action, options.authorityID ?? '');
        } catch (error) {
          throw new CommandError(`could not ${action} ${label} authority: ${errorMessage(error)}`);
        }
      });
      io.stdout.write(`${PAST[action]} ${label} authority:\n`);
      if (!state) {
        throw new CommandError(
          `internal error: expected to have ${PAST[action].toLowerCase()} ${label} authority information`,
        );
      }
      io.stdout.write(formatAuthorityState(kind, state));
    });
  }
}

export function addLocalAuthorityCommands(program: Command, io: CliIo): void {
  const localAuthority = program.command('localauthority').description('Manages local authorities');
  addKind(localAuthority, 'x509', io);
  addKind(localAuthority, 'jwt', io);

  const upstream = program.command('upstreamauthority').description('Manages upstream authorities');
  for (const action of ['taint', 'revoke'] as const) {
    upstream
      .command(action)
      .description(`${action === 'taint' ? 'Taints' : 'Revokes'} an X.509 upstream authority`)
      .option('--socketPath <path>', 'Path to the SPIRE Server API socket', DEFAULT_SERVER_SOCKET_PATH)
      .option(
        '--subjectKeyID <ski>',
        `The Subject Key ID of the upstream authority's CA certificate to ${action}`,
      )
      .action(async (options: { socketPath: string; subjectKeyID?: string }) => {
        const subjectKeyId = options.subjectKeyID;
        if (!subjectKeyId)
          throw new CommandError('the Subject Key ID of the X.509 upstream authority is required');
        const response = await withAdminApi(options.socketPath, async (api) => {
          const client = api.localAuthority();
          try {
            return action === 'taint'
              ? await unary<{ upstreamAuthoritySubjectKeyId: string }>((done) =>
                  client.TaintX509UpstreamAuthority({ subjectKeyId }, done),
                )
              : await unary<{ upstreamAuthoritySubjectKeyId: string }>((done) =>
                  client.RevokeX509UpstreamAuthority({ subjectKeyId }, done),
                );
          } catch (error) {
            throw new CommandError(`could not ${action} X.509 upstream authority: ${errorMessage(error)}`);
          }
        });
        io.stdout.write(`${action === 'taint' ? 'Tainted' : 'Revoked'} X.509 upstream authority:\n`);
        io.stdout.write(`  Subject Key ID: ${response.upstreamAuthoritySubjectKeyId}\n`);
      });
  }
}
