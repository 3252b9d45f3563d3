import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Datastore } from '../datastore/datastore.js';
import { NotFoundError } from '../datastore/errors.js';
import type { AttestedNode } from '../datastore/records.js';
import type { AgentHandlers } from '../proto/services.js';
import type { AttestAgentRequest__Output } from '../proto/gen/spire/api/server/agent/v1/AttestAgentRequest.js';
import type { AttestAgentResponse } from '../proto/gen/spire/api/server/agent/v1/AttestAgentResponse.js';
import type { RenewAgentResponse } from '../proto/gen/spire/api/server/agent/v1/RenewAgentResponse.js';
import type { ListAgentsResponse } from '../proto/gen/spire/api/server/agent/v1/ListAgentsResponse.js';
import type { ListAgentsRequest__Output } from '../proto/gen/spire/api/server/agent/v1/ListAgentsRequest.js';
import type { CountAgentsResponse } from '../proto/gen/spire/api/server/agent/v1/CountAgentsResponse.js';
import type { Agent } from '../proto/gen/spire/api/types/Agent.js';
import type { JoinToken } from '../proto/gen/spire/api/types/JoinToken.js';
import type { Empty } from '../proto/gen/google/protobuf/Empty.js';
import { spiffeIdFromProto, spiffeIdToProto } from '../proto/convert.js';
import { parseCsr } from '../pki/csr.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { RpcError, toServiceError, statusName } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';
import type { CaManager } from './ca/ca-manager.js';
import type { EntryCache } from './entry-cache.js';
import { matchesSelectorFilter } from './entry-validation.js';
import { attestX509Pop, type NodeAttestationResult, type X509PopSettings } from './x509pop-attestor.js';

export interface AgentServiceDeps {
  auth: ApiAuthorization;
  ca: CaManager;
  datastore: Datastore;
  entries: EntryCache;
  trustDomain: string;
  agentTtl: number;
  /** Present when NodeAttestor "x509pop" is configured. */
  x509pop?: X509PopSettings;
  observe: RpcObserver;
  logger: Logger;
}

const SERVICE = 'agent.v1.Agent';
const TOKEN = /^[A-Za-z0-9._~-]{1,128}$/;

function agentToProto(node: AttestedNode): Agent {
  return {
    id: spiffeIdToProto(node.spiffeId),
    attestationType: node.attestationType,
    x509svidSerialNumber: node.certSerialNumber,
    x509svidExpiresAt: node.certNotAfter,
    selectors: node.selectors,
    banned: node.certSerialNumber === '',
    canReattest: node.canReattest,
  };
}

/** The time format of `by_expires_before`, as the SPIRE CLI writes it: "2006-01-02 15:04:05 -0700 -07". */
const EXPIRES_BEFORE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})(?: \S+)?$/;

function parseExpiresBefore(text: string): number {
  const m = EXPIRES_BEFORE.exec(text);
  if (!m)
    throw RpcError.invalidArgument(
      `failed to parse by_expires_before "${text}": want "2006-01-02 15:04:05 -0700 -07"`,
    );
  const [, y, mo, d, h, mi, sec, sign, oh, om] = m;
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60);
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) / 1000 - offset;
}

/** ListAgents' and CountAgents' filter (the two share its shape). */
function filterAgents(nodes: AttestedNode[], filter: ListAgentsRequest__Output['filter']): AttestedNode[] {
  if (!filter) return nodes;
  const expiresBefore =
    filter.byExpiresBefore === '' ? undefined : parseExpiresBefore(filter.byExpiresBefore);
  const selectors =
    filter.bySelectorMatch && filter.bySelectorMatch.selectors.length > 0
      ? filter.bySelectorMatch
      : undefined;
  return nodes.filter(
    (n) =>
      (filter.byBanned === null || (n.certSerialNumber === '') === filter.byBanned.value) &&
      (filter.byAttestationType === '' || n.attestationType === filter.byAttestationType) &&
      (filter.byCanReattest === null || n.canReattest === filter.byCanReattest.value) &&
      (expiresBefore === undefined || n.certNotAfter < expiresBefore) &&
      (selectors === undefined || matchesSelectorFilter(n.selectors, selectors)),
  );
}

function publicKeyOf(csr: Buffer): Buffer {
  try {
    return parseCsr(csr).publicKeySpki;
  } catch (error) {
    throw RpcError.invalidArgument(`failed to parse CSR: ${(error as Error).message}`);
  }
}

/**
 * Reads a client stream one message at a time: undefined once the client has half-closed or
 * cancelled it.
 */
function streamReader<T>(stream: NodeJS.EventEmitter): () => Promise<T | undefined> {
  const queued: T[] = [];
  const waiting: ((message: T | undefined) => void)[] = [];
  let ended = false;
  stream.on('data', (message: T) => {
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queued.push(message);
  });
  const end = () => {
    ended = true;
    for (const waiter of waiting.splice(0)) waiter(undefined);
  };
  stream.on('end', end);
  stream.on('cancelled', end);
  return () => {
    if (queued.length > 0) return Promise.resolve(queued.shift());
    if (ended) return Promise.resolve(undefined);
    return new Promise((resolve) => waiting.push(resolve));
  };
}

/** agent.v1: node attestation (join tokens, x509pop), agent SVID renewal, and the operator's agent commands. */
export function agentService(deps: AgentServiceDeps): Partial<AgentHandlers> {
  const { auth, ca, datastore, trustDomain, observe, logger } = deps;

  function agentIdFrom(id: Parameters<typeof spiffeIdFromProto>[0]): string {
    let agentId: SpiffeId;
    try {
      agentId = SpiffeId.parse(spiffeIdFromProto(id, 'id'));
    } catch (error) {
      throw RpcError.invalidArgument(`invalid agent ID: ${(error as Error).message}`);
    }
    if (agentId.trustDomain !== trustDomain || !agentId.path.startsWith('/spire/agent/')) {
      throw RpcError.invalidArgument(
        `invalid agent ID: "${agentId}" is not an agent in trust domain "${trustDomain}"`,
      );
    }
    return agentId.toString();
  }

  async function listNodes(action: string): Promise<AttestedNode[]> {
    try {
      return await datastore.nodes.list();
    } catch (error) {
      throw RpcError.internal(`failed to ${action} agents: ${(error as Error).message}`);
    }
  }

  async function attestJoinToken(payload: Buffer): Promise<NodeAttestationResult> {
    const token = payload.toString('utf8');
    if (!TOKEN.test(token)) throw RpcError.invalidArgument('failed to attest: join token is malformed');
    let stored;
    try {
      stored = await datastore.joinTokens.take(token);
    } catch (error) {
      throw RpcError.internal(`failed to attest: unable to fetch join token: ${(error as Error).message}`);
    }
    if (!stored)
      throw RpcError.permissionDenied('failed to attest: join token does not exist or has already been used');
    // SPIRE consumes an expired token too: a token is single use whatever the outcome.
    if (stored.expiresAt * 1000 < Date.now())
      throw RpcError.permissionDenied('failed to attest: join token expired');
    return {
      agentId: SpiffeId.fromParts(trustDomain, `/spire/agent/join_token/${token}`).toString(),
      selectors: [],
      canReattest: false,
    };
  }

  /**
   * One attestation: join_token in one message; any other attestor is SPIRE's challenge-response
   * over the stream, `exchange` sending a challenge and resolving with the agent's answer.
   */
  async function attest(
    request: AttestAgentRequest__Output,
    exchange: (challenge: Buffer) => Promise<Buffer>,
  ): Promise<AttestAgentResponse> {
    if (request.step !== 'params' || !request.params)
      throw RpcError.invalidArgument('malformed param: missing params');
    const { data, params } = request.params;
    if (!data || data.type === '')
      throw RpcError.invalidArgument('malformed param: missing attestation data');
    if (!params || params.csr.length === 0)
      throw RpcError.invalidArgument('malformed param: missing X509-SVID parameters');
    if (data.type !== 'join_token' && !(data.type === 'x509pop' && deps.x509pop))
      throw RpcError.failedPrecondition(
        `error getting node attestor: could not find node attestor type "${data.type}"`,
      );
    // Checked before the token is consumed, so a malformed request leaves the token usable.
    const publicKeySpki = publicKeyOf(params.csr);
    let result: NodeAttestationResult;
    if (data.type === 'join_token') result = await attestJoinToken(data.payload);
    else {
      if (data.payload.length === 0) throw RpcError.invalidArgument('payload cannot be empty');
      result = await attestX509Pop(deps.x509pop!, trustDomain, data.payload, exchange);
    }
    const { agentId, canReattest } = result;

    const existing = await datastore.nodes.get(agentId);
    if (existing && existing.certSerialNumber === '')
      throw RpcError.permissionDenied('failed to attest: agent is banned');
    const svid = await ca.signX509Svid({
      spiffeId: agentId,
      publicKeySpki,
      ttlSeconds: deps.agentTtl,
      dnsNames: [],
    });
    const node: AttestedNode = {
      spiffeId: agentId,
      attestationType: data.type,
      certSerialNumber: svid.serial.toString(10),
      certNotAfter: svid.notAfter,
      newCertSerialNumber: '',
      newCertNotAfter: 0,
      canReattest,
      selectors: result.selectors,
    };
    try {
      if (existing)
        await datastore.nodes.updateSerials(agentId, {
          certSerialNumber: node.certSerialNumber,
          certNotAfter: node.certNotAfter,
        });
      else await datastore.nodes.create(node);
    } catch (error) {
      throw RpcError.internal(`failed to create attested agent: ${(error as Error).message}`);
    }
    logger.info({ agent_id: agentId, node_attestor_type: data.type }, 'Agent attestation request completed');
    return {
      result: {
        svid: { certChain: svid.certificateChain, id: spiffeIdToProto(agentId), expiresAt: svid.notAfter },
        reattestable: canReattest,
      },
    };
  }

  return {
    AttestAgent: (call) => {
      const started = performance.now();
      const fail = (error: unknown) => {
        const serviceError = toServiceError(error);
        observe(
          SERVICE,
          'AttestAgent',
          statusName(serviceError.code ?? grpc.status.UNKNOWN),
          (performance.now() - started) / 1000,
          error,
        );
        call.emit('error', Object.assign(new Error(serviceError.details), serviceError));
      };
      call.on('error', () => undefined);
      const next = streamReader<AttestAgentRequest__Output>(call);
      const run = async () => {
        const first = await next();
        if (!first) throw RpcError.invalidArgument('failed to receive request from stream: no request');
        return attest(first, async (challenge) => {
          call.write({ challenge });
          const answer = await next();
          if (!answer?.challengeResponse || answer.step !== 'challengeResponse')
            throw RpcError.internal('failed to receive challenge from agent');
          return answer.challengeResponse;
        });
      };
      run().then((response) => {
        observe(SERVICE, 'AttestAgent', 'OK', (performance.now() - started) / 1000);
        call.write(response);
        call.end();
      }, fail);
    },

    RenewAgent: unary(SERVICE, 'RenewAgent', observe, async (request, call): Promise<RenewAgentResponse> => {
      const { agentId } = await auth.agent(call);
      if (!request.params || request.params.csr.length === 0)
        throw RpcError.invalidArgument('params cannot be nil');
      const publicKeySpki = publicKeyOf(request.params.csr);
      const svid = await ca.signX509Svid({
        spiffeId: agentId,
        publicKeySpki,
        ttlSeconds: deps.agentTtl,
        dnsNames: [],
      });
      try {
        await datastore.nodes.updateSerials(agentId, {
          newCertSerialNumber: svid.serial.toString(10),
          newCertNotAfter: svid.notAfter,
        });
      } catch (error) {
        throw RpcError.internal(`failed to update agent: ${(error as Error).message}`);
      }
      logger.debug({ agent_id: agentId }, 'Renewed agent SVID');
      return {
        svid: { certChain: svid.certificateChain, id: spiffeIdToProto(agentId), expiresAt: svid.notAfter },
      };
    }),

    ListAgents: unary(SERVICE, 'ListAgents', observe, async (request, call): Promise<ListAgentsResponse> => {
      auth.local(call, 'ListAgents');
      const nodes = filterAgents(await listNodes('list'), request.filter);
      return { agents: nodes.map(agentToProto), nextPageToken: '' };
    }),

    CountAgents: unary(
      SERVICE,
      'CountAgents',
      observe,
      async (request, call): Promise<CountAgentsResponse> => {
        auth.local(call, 'CountAgents');
        return { count: filterAgents(await listNodes('count'), request.filter).length };
      },
    ),

    GetAgent: unary(SERVICE, 'GetAgent', observe, async (request, call): Promise<Agent> => {
      auth.local(call, 'GetAgent');
      const agentId = agentIdFrom(request.id);
      let node: AttestedNode | undefined;
      try {
        node = await datastore.nodes.get(agentId);
      } catch (error) {
        throw RpcError.internal(`failed to fetch agent: ${(error as Error).message}`);
      }
      if (!node) throw RpcError.notFound('agent not found');
      return agentToProto(node);
    }),

    BanAgent: unary(SERVICE, 'BanAgent', observe, async (request, call): Promise<Empty> => {
      auth.local(call, 'BanAgent');
      const agentId = agentIdFrom(request.id);
      try {
        await datastore.nodes.ban(agentId);
      } catch (error) {
        if (error instanceof NotFoundError) throw RpcError.notFound('agent not found');
        throw RpcError.internal(`failed to ban agent: ${(error as Error).message}`);
      }
      logger.info({ agent_id: agentId }, 'Agent banned');
      return {};
    }),

    DeleteAgent: unary(SERVICE, 'DeleteAgent', observe, async (request, call): Promise<Empty> => {
      auth.local(call, 'DeleteAgent');
      const agentId = agentIdFrom(request.id);
      try {
        await datastore.nodes.delete(agentId);
      } catch (error) {
        if (error instanceof NotFoundError) throw RpcError.notFound('agent not found');
        throw RpcError.internal(`failed to remove agent: ${(error as Error).message}`);
      }
      logger.info({ agent_id: agentId }, 'Agent deleted');
      return {};
    }),

    CreateJoinToken: unary(SERVICE, 'CreateJoinToken', observe, async (request, call): Promise<JoinToken> => {
      auth.local(call, 'CreateJoinToken');
      if (request.ttl < 1) throw RpcError.invalidArgument('ttl is required, you must provide one');
      const token = request.token === '' ? randomUUID() : request.token;
      if (!TOKEN.test(token))
        throw RpcError.invalidArgument(
          'invalid token: 1 to 128 characters of letters, digits, ".", "_", "~" or "-"',
        );
      let aliasId: string | undefined;
      if (request.agentId) {
        try {
          const id = SpiffeId.parse(spiffeIdFromProto(request.agentId, 'agent_id'));
          if (id.trustDomain !== trustDomain)
            throw new Error(`"${id}" is not a member of trust domain "${trustDomain}"`);
          if (id.path === '' || id.path.startsWith('/spire/'))
            throw new Error(`"${id}" must be a workload ID outside /spire`);
          aliasId = id.toString();
        } catch (error) {
          throw RpcError.invalidArgument(`invalid agent ID: ${(error as Error).message}`);
        }
      }
      const expiresAt = Math.floor(Date.now() / 1000) + request.ttl;
      const tokenAgentId = SpiffeId.fromParts(trustDomain, `/spire/agent/join_token/${token}`).toString();
      try {
        const alias = await datastore.transaction(async (tx) => {
          await tx.joinTokens.create(token, expiresAt);
          if (!aliasId) return undefined;
          // The alias entry that lets operators parent workloads to a readable agent ID.
          return tx.entries.create({
            spiffeId: aliasId,
            parentId: tokenAgentId,
            selectors: [{ type: 'spiffe_id', value: tokenAgentId }],
            x509SvidTtl: 0,
            jwtSvidTtl: 0,
            downstream: false,
            admin: false,
            dnsNames: [],
            hint: '',
            expiresAt: 0,
          });
        });
        if (alias) deps.entries.upsert(alias);
      } catch (error) {
        throw RpcError.internal(`failed to create token: ${(error as Error).message}`);
      }
      return { value: token, expiresAt };
    }),
  };
}
