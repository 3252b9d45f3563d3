/**
 * A server's local authorities and the forced-rotation steps on them (prepare, activate, taint,
 * revoke; X.509 or JWT), over SPIRE's LocalAuthority and Bundle admin APIs, reached through the
 * implementation's admin operations on the server (`ServerAdmin.session`).
 * Each step is answered from the current state when it is already done, so a retried step (a reply
 * lost, a worker restarted) succeeds instead of failing. Used by the operator's rotation and by the
 * ca-compromise fault.
 */
import type { ServiceError } from '@grpc/grpc-js';
import type { AdminApi } from '../identity-core/client/admin-api.js';
import { deadlineIn, unary } from '../identity-core/client/grpc-call.js';
import type { Bundle__Output } from '../identity-core/proto/gen/spire/api/types/Bundle.js';
import { x509AuthorityId } from '../identity-core/spiffe/trust-bundle.js';
import type { ServerAdmin } from './implementation/server-admin.js';

export type AuthorityKind = 'x509' | 'jwt';
export type AuthorityAction = 'prepare' | 'activate' | 'taint' | 'revoke';

export interface AuthorityStates {
  active?: string;
  prepared?: string;
  old?: string;
  /** Whether the old authority is tainted in the server's bundle. */
  oldTainted?: boolean;
  /**
   * Whether the old authority has left the server's bundle: revoked. SPIRE (and tspire) keep a
   * revoked authority in the old slot until the next prepare, so the slot alone does not say so.
   */
  oldRevoked?: boolean;
}

export interface X509AuthorityView extends AuthorityStates {
  /** Every X.509 authority in the server's bundle, by id, with its tainted flag. */
  bundle: Map<string, boolean>;
}

const CALL_SECONDS = 10;
const options = () => ({ deadline: deadlineIn(CALL_SECONDS) });

type Slot = { authorityId: string; expiresAt: number | string } | null;
interface SlotsAnswer {
  active: Slot;
  prepared: Slot;
  old: Slot;
}

function slots(admin: AdminApi, kind: AuthorityKind): Promise<SlotsAnswer> {
  const client = admin.localAuthority();
  return unary<SlotsAnswer>((done) =>
    kind === 'x509'
      ? client.GetX509AuthorityState({}, options(), done)
      : client.GetJWTAuthorityState({}, options(), done),
  );
}

const bundleOf = (admin: AdminApi) =>
  unary<Bundle__Output>((done) => admin.bundle().GetBundle({}, options(), done));

/** The authorities in a bundle of `kind`, by id, with their tainted flags. */
function bundleAuthorities(bundle: Bundle__Output, kind: AuthorityKind): Map<string, boolean> {
  return kind === 'x509'
    ? new Map(bundle.x509Authorities.map((a) => [x509AuthorityId(Buffer.from(a.asn1)), a.tainted]))
    : new Map(bundle.jwtAuthorities.map((k) => [k.keyId, k.tainted]));
}

async function view(
  admin: AdminApi,
  kind: AuthorityKind,
): Promise<AuthorityStates & { bundle: Map<string, boolean> }> {
  const state = await slots(admin, kind);
  const bundle = bundleAuthorities(await bundleOf(admin), kind);
  const old = state.old?.authorityId;
  const oldTainted = old === undefined ? undefined : bundle.get(old) === true;
  const oldRevoked = old === undefined ? undefined : !bundle.has(old);
  return {
    ...(state.active ? { active: state.active.authorityId } : {}),
    ...(state.prepared ? { prepared: state.prepared.authorityId } : {}),
    ...(old ? { old } : {}),
    ...(oldTainted !== undefined ? { oldTainted } : {}),
    ...(oldRevoked !== undefined ? { oldRevoked } : {}),
    bundle,
  };
}

/** The server's authority slots of `kind`, with whether its old authority is tainted in the bundle. */
export async function authorityState(server: ServerAdmin, kind: AuthorityKind): Promise<AuthorityStates> {
  const { bundle: _bundle, ...state } = await server.session((admin) => view(admin, kind));
  return state;
}

/** The server's X.509 authority slots and every X.509 authority its bundle holds. */
export function x509AuthorityView(server: ServerAdmin): Promise<X509AuthorityView> {
  return server.session((admin) => view(admin, 'x509'));
}

/**
 * The authorities of `kind` in a server's bundle, by id, with their tainted flags (any server: a
 * downstream mirrors its upstream's roots).
 */
export function bundleAuthoritiesOf(server: ServerAdmin, kind: AuthorityKind): Promise<Map<string, boolean>> {
  return server.session(async (admin) => bundleAuthorities(await bundleOf(admin), kind));
}

/**
 * The instant (ms) up to which a server can sign X509-SVIDs without its upstream: its active
 * authority's NotAfter, or a prepared one's, which it activates at the active's threshold by itself.
 */
export function signingUntil(server: ServerAdmin): Promise<number | undefined> {
  return server.session(async (admin) => {
    const state = await slots(admin, 'x509');
    const expiries = [state.active, state.prepared].flatMap((a) => (a ? [Number(a.expiresAt) * 1000] : []));
    return expiries.length > 0 ? Math.max(...expiries) : undefined;
  });
}

/** Whether `action` on `authorityId` is already done in `state`. */
function alreadyDone(
  action: Exclude<AuthorityAction, 'prepare'>,
  state: AuthorityStates,
  authorityId: string,
) {
  if (action === 'activate') return state.active === authorityId;
  if (action === 'taint')
    return state.old === authorityId && (state.oldTainted === true || state.oldRevoked === true);
  return state.old !== authorityId || state.oldRevoked === true;
}

/**
 * One rotation step on one server; returns the authority it acted on (for `prepare`, the prepared
 * one, which an existing prepared authority answers). `state` is the server's state as the caller
 * just read it; read here when not given.
 */
export function authorityStep(
  server: ServerAdmin,
  kind: AuthorityKind,
  action: AuthorityAction,
  authorityId?: string,
  state?: AuthorityStates,
): Promise<string> {
  return server.session(async (admin) => {
    const current = state ?? (await view(admin, kind));
    const name = kind === 'x509' ? 'X509' : 'JWT';
    type Answer = Record<string, { authorityId: string } | null>;
    const client = admin.localAuthority() as unknown as Record<
      string,
      (
        request: object,
        options: object,
        done: (error: ServiceError | null, answer?: Answer) => void,
      ) => unknown
    >;
    const call = (method: string, request: object) =>
      unary<Answer>((done) => client[method]!(request, options(), done));
    if (action === 'prepare') {
      if (current.prepared) return current.prepared;
      const answer = await call(`Prepare${name}Authority`, {});
      return answer.preparedAuthority!.authorityId;
    }
    if (!authorityId) throw new Error(`${action} needs an authority id`);
    if (!alreadyDone(action, current, authorityId))
      await call(`${action[0]!.toUpperCase()}${action.slice(1)}${name}Authority`, { authorityId });
    return authorityId;
  });
}
