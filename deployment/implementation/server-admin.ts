/**
 * The admin operations deployment/ does on a server (entries, join tokens, the bundle, agents,
 * health) over SPIRE's admin gRPC API on its socket, which both implementations speak. Each call
 * has a deadline; a failure is worded here once, naming the operation as the CLI would
 * ("entry create", "token generate") and the server's answer.
 */
import { withAdminApi, type AdminApi } from '../../identity-core/client/admin-api.js';
import { deadlineIn, RpcCallError, unary } from '../../identity-core/client/grpc-call.js';
import type { Agent__Output } from '../../identity-core/proto/gen/spire/api/types/Agent.js';
import type { Bundle__Output } from '../../identity-core/proto/gen/spire/api/types/Bundle.js';
import type { Entry, Entry__Output } from '../../identity-core/proto/gen/spire/api/types/Entry.js';
import type { JoinToken__Output } from '../../identity-core/proto/gen/spire/api/types/JoinToken.js';
import type { SPIFFEID } from '../../identity-core/proto/gen/spire/api/types/SPIFFEID.js';
import type { BatchCreateEntryResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/BatchCreateEntryResponse.js';
import type { BatchDeleteEntryResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/BatchDeleteEntryResponse.js';
import type { ListEntriesRequest } from '../../identity-core/proto/gen/spire/api/server/entry/v1/ListEntriesRequest.js';
import type { ListEntriesResponse__Output } from '../../identity-core/proto/gen/spire/api/server/entry/v1/ListEntriesResponse.js';
import type { ListAgentsResponse__Output } from '../../identity-core/proto/gen/spire/api/server/agent/v1/ListAgentsResponse.js';
import type { HealthCheckResponse__Output } from '../../identity-core/proto/gen/grpc/health/v1/HealthCheckResponse.js';
import { bundleFromProto } from '../../identity-core/proto/convert.js';
import { SpiffeId } from '../../identity-core/spiffe/spiffe-id.js';
import { x509AuthoritiesPem } from '../../identity-core/spiffe/trust-bundle.js';

const CALL_SECONDS = 10;
const PAGE_SIZE = 500;
/** What `spire-server token generate` gives a token when no -ttl is given. */
const JOIN_TOKEN_TTL_SECONDS = 600;

/** A registration entry as deployment/ registers them: a workload's, or a downstream server's. */
export interface EntrySpec {
  parentId: string;
  spiffeId: string;
  /** "type:value", e.g. "unix:uid:1000". */
  selectors: string[];
  /** The entry describes a downstream server (it may obtain an intermediate CA). */
  downstream?: boolean;
}

const options = () => ({ deadline: deadlineIn(CALL_SECONDS) });

function apiId(text: string): SPIFFEID {
  const id = SpiffeId.parse(text);
  return { trustDomain: id.trustDomain, path: id.path };
}

/** "type:value"; everything after the first colon is the value, as spire-server reads -selector. */
function selector(text: string): { type: string; value: string } {
  const colon = text.indexOf(':');
  if (colon < 0) throw new Error(`selector ${JSON.stringify(text)} must be formatted as type:value`);
  return { type: text.slice(0, colon), value: text.slice(colon + 1) };
}

const statusText = (status: { code: number; message: string } | null) =>
  new RpcCallError(status?.code ?? 0, status?.message ?? '').message;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** One server's admin API; each operation opens its own connection and closes it. */
export class ServerAdmin {
  constructor(readonly socketPath: string) {}

  /**
   * Runs `use` with fresh clients of the server's admin API, closed afterwards; its errors reach the
   * caller as they are (deployment/authority-rotation.ts words its own).
   */
  session<T>(use: (api: AdminApi) => Promise<T>): Promise<T> {
    return withAdminApi(this.socketPath, use);
  }

  private async call<T>(operation: string, use: (api: AdminApi) => Promise<T>): Promise<T> {
    try {
      return await this.session(use);
    } catch (error) {
      throw new Error(`${operation} failed: ${messageOf(error)}`, { cause: error });
    }
  }

  /** The entries with this SPIFFE ID (only downstream ones with `downstream`). */
  findEntries(spiffeId: string, query: { downstream?: boolean } = {}): Promise<Entry__Output[]> {
    return this.call(`entry show for ${spiffeId}`, async (api) => {
      const filter: NonNullable<ListEntriesRequest['filter']> = { bySpiffeId: apiId(spiffeId) };
      if (query.downstream) filter.byDownstream = { value: true };
      const client = api.entry();
      const found: Entry__Output[] = [];
      let pageToken = '';
      do {
        const page = await unary<ListEntriesResponse__Output>((done) =>
          client.ListEntries({ filter, pageSize: PAGE_SIZE, pageToken }, options(), done),
        );
        found.push(...page.entries);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return found;
    });
  }

  /** Registers the entry; fails when the server refuses it (an identical one exists, say). */
  createEntry(spec: EntrySpec): Promise<Entry__Output> {
    return this.call(`entry create for ${spec.spiffeId}`, async (api) => {
      const entry: Entry = {
        parentId: apiId(spec.parentId),
        spiffeId: apiId(spec.spiffeId),
        selectors: spec.selectors.map(selector),
        downstream: spec.downstream ?? false,
      };
      const answer = await unary<BatchCreateEntryResponse__Output>((done) =>
        api.entry().BatchCreateEntry({ entries: [entry] }, options(), done),
      );
      const result = answer.results[0];
      if (!result?.entry || (result.status?.code ?? 0) !== 0)
        throw new Error(statusText(result?.status ?? null));
      return result.entry;
    });
  }

  /**
   * Registers the entry unless one with its SPIFFE ID (a downstream one, for a downstream entry)
   * is there already; whether it registered it.
   */
  async ensureEntry(spec: EntrySpec): Promise<boolean> {
    const found = await this.findEntries(spec.spiffeId, { downstream: spec.downstream ?? false });
    if (found.length > 0) return false;
    await this.createEntry(spec);
    return true;
  }

  deleteEntry(id: string): Promise<void> {
    return this.call(`entry delete of ${id}`, async (api) => {
      const answer = await unary<BatchDeleteEntryResponse__Output>((done) =>
        api.entry().BatchDeleteEntry({ ids: [id] }, options(), done),
      );
      const status = answer.results[0]?.status ?? null;
      if ((status?.code ?? 0) !== 0) throw new Error(statusText(status));
    });
  }

  /** A join token with which an agent attests as `spiffeId`. */
  generateJoinToken(spiffeId: string): Promise<string> {
    return this.call(`token generate for ${spiffeId}`, async (api) => {
      const token = await unary<JoinToken__Output>((done) =>
        api
          .agent()
          .CreateJoinToken({ ttl: JOIN_TOKEN_TTL_SECONDS, agentId: apiId(spiffeId) }, options(), done),
      );
      return token.value;
    });
  }

  /** The X.509 roots of the server's bundle, PEM, as `bundle show -format pem` prints them. */
  bundlePem(): Promise<string> {
    return this.call('bundle show', async (api) => {
      const bundle = await unary<Bundle__Output>((done) => api.bundle().GetBundle({}, options(), done));
      return x509AuthoritiesPem(bundleFromProto(bundle));
    });
  }

  /** Every attested agent; it reads the datastore, so an answer also proves the server reaches it. */
  listAgents(): Promise<Agent__Output[]> {
    return this.call('agent list', async (api) => {
      const client = api.agent();
      const found: Agent__Output[] = [];
      let pageToken = '';
      do {
        const page = await unary<ListAgentsResponse__Output>((done) =>
          client.ListAgents({ pageSize: PAGE_SIZE, pageToken }, options(), done),
        );
        found.push(...page.agents);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return found;
    });
  }

  /** Whether the server answers grpc.health.v1 SERVING on its socket; never throws. */
  async healthy(): Promise<boolean> {
    try {
      const answer = await this.session((api) =>
        unary<HealthCheckResponse__Output>((done) => api.health().Check({ service: '' }, options(), done)),
      );
      return answer.status === 'SERVING';
    } catch {
      return false;
    }
  }
}
