/**
 * The X.509 local authority of a server, as the ca-compromise fault sees it: the journal's slots and
 * which authorities the bundle holds and taints. Calls go to the server's admin socket.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { withAdminApi, type AdminApi } from '../../identity-core/client/admin-api.js';
import { deadlineIn, unary } from '../../identity-core/client/grpc-call.js';
import type { Bundle__Output } from '../../identity-core/proto/gen/spire/api/types/Bundle.js';
import type { GetX509AuthorityStateResponse__Output } from '../../identity-core/proto/gen/spire/api/server/localauthority/v1/GetX509AuthorityStateResponse.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';

const CALL_SECONDS = 10;

export interface X509AuthorityView {
  active?: string;
  prepared?: string;
  old?: string;
  /** Every X.509 authority in the server's bundle, by id, with its tainted flag. */
  bundle: Map<string, boolean>;
}

async function view(admin: AdminApi): Promise<X509AuthorityView> {
  const options = () => ({ deadline: deadlineIn(CALL_SECONDS) });
  const state = await unary<GetX509AuthorityStateResponse__Output>((done) =>
    admin.localAuthority().GetX509AuthorityState({}, options(), done),
  );
  return { ...slots(state), bundle: await bundleAuthorities(admin) };
}

function slots(state: GetX509AuthorityStateResponse__Output) {
  return {
    ...(state.active ? { active: state.active.authorityId } : {}),
    ...(state.prepared ? { prepared: state.prepared.authorityId } : {}),
    ...(state.old ? { old: state.old.authorityId } : {}),
  };
}

async function bundleAuthorities(admin: AdminApi): Promise<Map<string, boolean>> {
  const bundle = await unary<Bundle__Output>((done) =>
    admin.bundle().GetBundle({}, { deadline: deadlineIn(CALL_SECONDS) }, done),
  );
  return new Map(bundle.x509Authorities.map((a) => [x509AuthorityId(Buffer.from(a.asn1)), a.tainted]));
}

export function x509AuthorityView(socket: string): Promise<X509AuthorityView> {
  return withAdminApi(socket, view);
}

/**
 * The instant (ms) up to which a server can sign X509-SVIDs without its upstream: its active
 * authority's NotAfter, or a prepared one's, which it activates at the active's threshold by itself.
 */
export function signingUntil(socket: string): Promise<number | undefined> {
  return withAdminApi(socket, async (admin) => {
    const state = await unary<GetX509AuthorityStateResponse__Output>((done) =>
      admin.localAuthority().GetX509AuthorityState({}, { deadline: deadlineIn(CALL_SECONDS) }, done),
    );
    const expiries = [state.active, state.prepared].flatMap((a) => (a ? [Number(a.expiresAt) * 1000] : []));
    return expiries.length > 0 ? Math.max(...expiries) : undefined;
  });
}

/** The X.509 authorities in a server's bundle (any server: a downstream mirrors its upstream's roots). */
export function bundleX509Authorities(socket: string): Promise<Map<string, boolean>> {
  return withAdminApi(socket, bundleAuthorities);
}

type Step = 'Prepare' | 'Activate' | 'Taint' | 'Revoke';

/** One forced-rotation step on the server's X.509 authority; returns the authority id it acted on. */
export function x509AuthorityStep(socket: string, step: Step, authorityId?: string): Promise<string> {
  return withAdminApi(socket, async (admin) => {
    type Answer = Record<string, { authorityId: string } | null>;
    const client = admin.localAuthority() as unknown as Record<
      string,
      (
        request: object,
        options: object,
        done: (error: ServiceError | null, answer?: Answer) => void,
      ) => unknown
    >;
    const answer = await unary<Answer>((done) =>
      client[`${step}X509Authority`]!(
        authorityId === undefined ? {} : { authorityId },
        { deadline: deadlineIn(CALL_SECONDS) },
        done,
      ),
    );
    const acted = Object.values(answer).find((a) => a?.authorityId)?.authorityId ?? authorityId;
    if (!acted) throw new Error(`${step}X509Authority answered without an authority id`);
    return acted;
  });
}
