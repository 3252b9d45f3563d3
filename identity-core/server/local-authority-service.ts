import type { Logger } from 'pino';
import type { LocalAuthorityHandlers } from '../proto/services.js';
import type { AuthorityState } from '../proto/gen/spire/api/server/localauthority/v1/AuthorityState.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';
import type { AuthorityKind } from '../pki/ca-journal.js';
import type { AuthoritySummary, CaManager } from './ca/ca-manager.js';

const SERVICE = 'localauthority.v1.LocalAuthority';

function state(summary: AuthoritySummary | undefined): AuthorityState | null {
  if (!summary) return null;
  return {
    authorityId: summary.authorityId,
    expiresAt: summary.expiresAt,
    upstreamAuthoritySubjectKeyId: summary.upstreamAuthorityId ?? '',
  };
}

function requireId(authorityId: string): string {
  if (authorityId === '') throw RpcError.invalidArgument('no authority ID provided');
  return authorityId;
}

/**
 * localauthority.v1: forced rotation of the X.509 and JWT authorities (prepare, activate, taint,
 * revoke), admin socket only. The CA manager enforces SPIRE's preconditions.
 */
export function localAuthorityService(deps: {
  auth: ApiAuthorization;
  ca: CaManager;
  observe: RpcObserver;
  logger: Logger;
}): Partial<LocalAuthorityHandlers> {
  const { auth, ca, observe } = deps;
  const kindName = (kind: AuthorityKind) => (kind === 'x509' ? 'X509' : 'JWT');

  function handlers(kind: AuthorityKind) {
    const name = kindName(kind);
    return {
      [`Get${name}AuthorityState`]: unary(
        SERVICE,
        `Get${name}AuthorityState`,
        observe,
        async (_request: unknown, call) => {
          auth.local(call, `Get${name}AuthorityState`);
          const s = await ca.authorityState(kind);
          return { active: state(s.active), prepared: state(s.prepared), old: state(s.old) };
        },
      ),
      [`Prepare${name}Authority`]: unary(
        SERVICE,
        `Prepare${name}Authority`,
        observe,
        async (_request: unknown, call) => {
          auth.local(call, `Prepare${name}Authority`);
          return { preparedAuthority: state(await ca.prepare(kind)) };
        },
      ),
      [`Activate${name}Authority`]: unary(
        SERVICE,
        `Activate${name}Authority`,
        observe,
        async (request: { authorityId: string }, call) => {
          auth.local(call, `Activate${name}Authority`);
          return { activatedAuthority: state(await ca.activate(kind, requireId(request.authorityId))) };
        },
      ),
      [`Taint${name}Authority`]: unary(
        SERVICE,
        `Taint${name}Authority`,
        observe,
        async (request: { authorityId: string }, call) => {
          auth.local(call, `Taint${name}Authority`);
          return { taintedAuthority: state(await ca.taint(kind, requireId(request.authorityId))) };
        },
      ),
      [`Revoke${name}Authority`]: unary(
        SERVICE,
        `Revoke${name}Authority`,
        observe,
        async (request: { authorityId: string }, call) => {
          auth.local(call, `Revoke${name}Authority`);
          return { revokedAuthority: state(await ca.revoke(kind, requireId(request.authorityId))) };
        },
      ),
    };
  }

  return {
    ...handlers('x509'),
    ...handlers('jwt'),
    TaintX509UpstreamAuthority: unary(
      SERVICE,
      'TaintX509UpstreamAuthority',
      observe,
      async (request: { subjectKeyId: string }, call) => {
        auth.local(call, 'TaintX509UpstreamAuthority');
        return { upstreamAuthoritySubjectKeyId: await ca.taintUpstream(request.subjectKeyId) };
      },
    ),
    RevokeX509UpstreamAuthority: unary(
      SERVICE,
      'RevokeX509UpstreamAuthority',
      observe,
      async (request: { subjectKeyId: string }, call) => {
        auth.local(call, 'RevokeX509UpstreamAuthority');
        return { upstreamAuthoritySubjectKeyId: await ca.revokeUpstream(request.subjectKeyId) };
      },
    ),
  } as Partial<LocalAuthorityHandlers>;
}
