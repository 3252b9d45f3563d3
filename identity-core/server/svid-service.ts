import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SVIDHandlers } from '../proto/services.js';
import type { BatchNewX509SVIDResponse } from '../proto/gen/spire/api/server/svid/v1/BatchNewX509SVIDResponse.js';
import type { MintX509SVIDResponse } from '../proto/gen/spire/api/server/svid/v1/MintX509SVIDResponse.js';
import type { MintJWTSVIDResponse } from '../proto/gen/spire/api/server/svid/v1/MintJWTSVIDResponse.js';
import type { NewJWTSVIDResponse } from '../proto/gen/spire/api/server/svid/v1/NewJWTSVIDResponse.js';
import type { NewDownstreamX509CAResponse } from '../proto/gen/spire/api/server/svid/v1/NewDownstreamX509CAResponse.js';
import { isSelfSigned, signDownstreamCa } from '../pki/x509-ca.js';
import { spiffeIdFromProto, spiffeIdToProto } from '../proto/convert.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { parseCsr } from '../pki/csr.js';
import { RpcError } from '../transport/rpc-error.js';
import { unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { ApiAuthorization } from './api-authorization.js';
import type { CaManager } from './ca/ca-manager.js';
import type { EntryCache } from './entry-cache.js';
import { validateDnsName } from './entry-validation.js';
import type { ServerMetrics } from './server-metrics.js';

export interface SvidServiceDeps {
  trustDomain: string;
  auth: ApiAuthorization;
  ca: CaManager;
  entries: EntryCache;
  defaultX509SvidTtl: number;
  defaultJwtSvidTtl: number;
  /** Seconds: a downstream CA's lifetime when the downstream states no preference. */
  caTtl: number;
  observe: RpcObserver;
  metrics: ServerMetrics;
  logger: Logger;
}

const SERVICE = 'svid.v1.SVID';
/** Per-request batch bound, so one caller cannot make the server sign without limit in one call. */
const MAX_BATCH = 500;

/** Operators mint for workloads: an ID of this trust domain, outside the reserved /spire namespace. */
function workloadId(id: string, trustDomain: string): string {
  const parsed = SpiffeId.parse(id);
  if (parsed.trustDomain !== trustDomain)
    throw new Error(`"${parsed}" is not a member of trust domain "${trustDomain}"`);
  if (parsed.path === '' || parsed.path.startsWith('/spire/'))
    throw new Error(
      `"${parsed}" is not a workload: the path must not be empty or in the reserved /spire namespace`,
    );
  return parsed.toString();
}

function mintTtl(ttl: number, defaultTtl: number): number {
  if (ttl < 0) throw RpcError.invalidArgument('invalid TTL: must not be negative');
  return ttl === 0 ? defaultTtl : ttl;
}

function status(code: grpc.status, message: string) {
  return { code, message };
}

/** svid.v1: agents trade CSRs for SVIDs of the entries the server has authorized for them. */
export function svidService(deps: SvidServiceDeps): Partial<SVIDHandlers> {
  const { auth, ca, entries, observe, metrics, logger } = deps;
  return {
    MintX509SVID: unary(
      SERVICE,
      'MintX509SVID',
      observe,
      async (request, call): Promise<MintX509SVIDResponse> => {
        auth.local(call, 'MintX509SVID');
        if (request.csr.length === 0) throw RpcError.invalidArgument('missing CSR');
        let csr: ReturnType<typeof parseCsr>;
        try {
          csr = parseCsr(request.csr);
        } catch (error) {
          throw RpcError.invalidArgument(`malformed CSR: ${(error as Error).message}`);
        }
        if (csr.uriSans.length === 0) throw RpcError.invalidArgument('CSR URI SAN is required');
        if (csr.uriSans.length > 1) throw RpcError.invalidArgument('only one URI SAN is expected');
        let spiffeId: string;
        let dnsNames: string[];
        try {
          spiffeId = workloadId(csr.uriSans[0]!, deps.trustDomain);
        } catch (error) {
          throw RpcError.invalidArgument(`CSR URI SAN is invalid: ${(error as Error).message}`);
        }
        try {
          dnsNames = csr.dnsSans.map(validateDnsName);
        } catch (error) {
          throw RpcError.invalidArgument(`CSR DNS name is invalid: ${(error as Error).message}`);
        }
        const svid = await ca
          .signX509Svid({
            spiffeId,
            publicKeySpki: csr.publicKeySpki,
            ttlSeconds: mintTtl(request.ttl, deps.defaultX509SvidTtl),
            dnsNames,
          })
          .catch((error: unknown) => {
            throw RpcError.internal(`failed to sign X509-SVID: ${(error as Error).message}`);
          });
        metrics.signedX509Svid();
        logger.info(
          { spiffe_id: spiffeId, expiration: new Date(svid.notAfter * 1000).toISOString() },
          'Minted X509-SVID',
        );
        return {
          svid: { id: spiffeIdToProto(spiffeId), certChain: svid.certificateChain, expiresAt: svid.notAfter },
        };
      },
    ),

    MintJWTSVID: unary(
      SERVICE,
      'MintJWTSVID',
      observe,
      async (request, call): Promise<MintJWTSVIDResponse> => {
        auth.local(call, 'MintJWTSVID');
        let spiffeId: string;
        try {
          spiffeId = workloadId(spiffeIdFromProto(request.id, 'id'), deps.trustDomain);
        } catch (error) {
          throw RpcError.invalidArgument(`invalid SPIFFE ID: ${(error as Error).message}`);
        }
        const audience = request.audience.filter((a) => a !== '');
        if (audience.length === 0) throw RpcError.invalidArgument('at least one audience is required');
        const svid = await ca
          .signJwtSvid({ spiffeId, audience, ttlSeconds: mintTtl(request.ttl, deps.defaultJwtSvidTtl) })
          .catch((error: unknown) => {
            throw RpcError.internal(`failed to sign JWT-SVID: ${(error as Error).message}`);
          });
        metrics.signedJwtSvid();
        logger.info({ spiffe_id: spiffeId, audience }, 'Minted JWT-SVID');
        return {
          svid: {
            token: svid.token,
            id: spiffeIdToProto(spiffeId),
            expiresAt: svid.expiresAt,
            issuedAt: svid.issuedAt,
          },
        };
      },
    ),

    BatchNewX509SVID: unary(
      SERVICE,
      'BatchNewX509SVID',
      observe,
      async (request, call): Promise<BatchNewX509SVIDResponse> => {
        const { agentId } = await auth.agent(call);
        if (request.params.length === 0) throw RpcError.invalidArgument('missing parameters');
        if (request.params.length > MAX_BATCH)
          throw RpcError.invalidArgument(`too many parameters: at most ${MAX_BATCH} per call`);
        const authorized = new Map(entries.authorizedEntries(agentId).map((e) => [e.id, e]));
        const results = await Promise.all(
          request.params.map(async (param) => {
            if (param.entryId === '')
              return { status: status(grpc.status.INVALID_ARGUMENT, 'missing entry ID') };
            const entry = authorized.get(param.entryId);
            if (!entry) return { status: status(grpc.status.NOT_FOUND, 'entry not found or not authorized') };
            if (param.csr.length === 0)
              return { status: status(grpc.status.INVALID_ARGUMENT, 'missing CSR') };
            let csr: ReturnType<typeof parseCsr>;
            try {
              csr = parseCsr(param.csr);
            } catch (error) {
              return {
                status: status(grpc.status.INVALID_ARGUMENT, `malformed CSR: ${(error as Error).message}`),
              };
            }
            // SPIRE takes the identity from the entry; a CSR that names another one is a mistake or an attack.
            if (csr.uriSans.length > 1 || (csr.uriSans.length === 1 && csr.uriSans[0] !== entry.spiffeId)) {
              return {
                status: status(
                  grpc.status.INVALID_ARGUMENT,
                  `CSR URI SAN does not match the entry's SPIFFE ID ${entry.spiffeId}`,
                ),
              };
            }
            const publicKeySpki = csr.publicKeySpki;
            try {
              const svid = await ca.signX509Svid({
                spiffeId: entry.spiffeId,
                publicKeySpki,
                ttlSeconds: entry.x509SvidTtl || deps.defaultX509SvidTtl,
                dnsNames: entry.dnsNames,
              });
              metrics.signedX509Svid();
              return {
                status: status(grpc.status.OK, 'OK'),
                svid: {
                  certChain: svid.certificateChain,
                  id: spiffeIdToProto(entry.spiffeId),
                  expiresAt: svid.notAfter,
                  hint: entry.hint,
                },
              };
            } catch (error) {
              logger.error({ entry_id: entry.id, err: String(error) }, 'Failed to sign X509-SVID');
              return {
                status: status(grpc.status.INTERNAL, `failed to sign X509-SVID: ${(error as Error).message}`),
              };
            }
          }),
        );
        return { results };
      },
    ),

    NewDownstreamX509CA: unary(
      SERVICE,
      'NewDownstreamX509CA',
      observe,
      async (request, call): Promise<NewDownstreamX509CAResponse> => {
        const callerId = await auth.downstream(call);
        if (request.csr.length === 0) throw RpcError.invalidArgument('missing CSR');
        let csr: ReturnType<typeof parseCsr>;
        try {
          csr = parseCsr(request.csr);
        } catch (error) {
          throw RpcError.invalidArgument(`malformed CSR: ${(error as Error).message}`);
        }
        if (request.preferredTtl < 0) throw RpcError.invalidArgument('preferred TTL must not be negative');
        const issuer = await ca.activeX509Ca();
        const signed = await signDownstreamCa({
          trustDomain: deps.trustDomain,
          publicKeySpki: csr.publicKeySpki,
          issuer,
          parentChainLength: issuer.chain.filter((der) => !isSelfSigned(der)).length,
          // SPIRE's default for a downstream CA when none is preferred is the server's own CA TTL.
          ttlSeconds: request.preferredTtl > 0 ? request.preferredTtl : deps.caTtl,
        }).catch((error: unknown) => {
          throw RpcError.internal(`failed to sign downstream X.509 CA: ${(error as Error).message}`);
        });
        metrics.signedDownstreamX509Ca();
        logger.info(
          {
            caller_id: callerId,
            authority_id: signed.authorityId,
            expiration: new Date(signed.notAfter * 1000).toISOString(),
          },
          'Signed downstream X.509 CA',
        );
        const bundle = await ca.bundle();
        return {
          caCertChain: [
            signed.der,
            ...issuer.chain.filter((c) => !bundle.x509Authorities.some((a) => a.der.equals(c))),
          ],
          x509Authorities: bundle.x509Authorities.map((a) => a.der),
        };
      },
    ),

    NewJWTSVID: unary(SERVICE, 'NewJWTSVID', observe, async (request, call): Promise<NewJWTSVIDResponse> => {
      const { agentId } = await auth.agent(call);
      if (request.entryId === '') throw RpcError.invalidArgument('missing entry ID');
      const audience = request.audience.filter((a) => a !== '');
      if (audience.length === 0) throw RpcError.invalidArgument('at least one audience is required');
      const entry = entries.authorizedEntries(agentId).find((e) => e.id === request.entryId);
      if (!entry) throw RpcError.notFound('entry not found or not authorized');
      const svid = await ca.signJwtSvid({
        spiffeId: entry.spiffeId,
        audience,
        ttlSeconds: entry.jwtSvidTtl || deps.defaultJwtSvidTtl,
      });
      metrics.signedJwtSvid();
      return {
        svid: {
          token: svid.token,
          id: spiffeIdToProto(entry.spiffeId),
          expiresAt: svid.expiresAt,
          issuedAt: svid.issuedAt,
          hint: entry.hint,
        },
      };
    }),
  };
}
