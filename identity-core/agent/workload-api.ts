import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Selector } from '../datastore/records.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { toSpiffeBundleJson, type TrustBundle } from '../spiffe/trust-bundle.js';
import { validateJwtSvid } from '../spiffe/jwt-svid.js';
import { RpcError } from '../transport/rpc-error.js';
import { serverStream, unary, type RpcObserver } from '../transport/rpc-handlers.js';
import type { PeerTaggedServer } from '../transport/peer-tagged-server.js';
import type { SpiffeWorkloadAPIHandlers } from '../proto/gen/SpiffeWorkloadAPI.js';
import type { X509SVIDResponse } from '../proto/gen/X509SVIDResponse.js';
import type { X509SVIDRequest__Output } from '../proto/gen/X509SVIDRequest.js';
import type { X509BundlesRequest__Output } from '../proto/gen/X509BundlesRequest.js';
import type { X509BundlesResponse } from '../proto/gen/X509BundlesResponse.js';
import type { JWTBundlesRequest__Output } from '../proto/gen/JWTBundlesRequest.js';
import type { JWTBundlesResponse } from '../proto/gen/JWTBundlesResponse.js';
import type { JWTSVIDResponse } from '../proto/gen/JWTSVIDResponse.js';
import type { ValidateJWTSVIDResponse } from '../proto/gen/ValidateJWTSVIDResponse.js';
import type { SvidCache, WorkloadIdentity } from './svid-cache.js';
import { attestUnixWorkload } from './unix-attestor.js';
import { toStruct } from './protobuf-struct.js';
import { jwtAudienceProblem } from './jwt-audience-limits.js';

/** How the Workload API obtains JWT-SVIDs: from the agent's cache or, failing that, from the server. */
export interface JwtSvidSource {
  fetch(entryId: string, spiffeId: string, audience: string[]): Promise<string>;
}

export interface WorkloadApiDeps {
  cache: SvidCache;
  jwtSvids: JwtSvidSource;
  peers: PeerTaggedServer;
  observe: RpcObserver;
  logger: Logger;
  onConnectionChange(delta: number): void;
}

const SERVICE = 'SpiffeWorkloadAPI';
const HEADER = 'workload.spiffe.io';

function requireSecurityHeader(call: { metadata: grpc.Metadata }): void {
  const values = call.metadata.get(HEADER);
  if (values.length !== 1 || values[0] !== 'true')
    throw RpcError.invalidArgument('security header missing from request');
}

function concat(ders: Buffer[]): Buffer {
  return Buffer.concat(ders);
}

function bundleDer(bundle: TrustBundle): Buffer {
  return concat(bundle.x509Authorities.map((a) => a.der));
}

/** The SPIFFE Workload API (all five RPCs) as the specification words them, served from the agent's cache. */
export function workloadApiHandlers(deps: WorkloadApiDeps): SpiffeWorkloadAPIHandlers {
  const { cache, peers, observe, logger } = deps;

  async function callerSelectors(
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  ): Promise<Selector[]> {
    const peer = peers.peerOf(call);
    if (!peer || peer.kind !== 'unix')
      throw RpcError.unavailable('could not determine the caller: not a Unix socket peer');
    try {
      return await attestUnixWorkload(peer.credentials);
    } catch (error) {
      logger.warn({ pid: peer.credentials.pid, err: String(error) }, 'Workload attestation failed');
      throw RpcError.unavailable(`workload attestation failed: ${(error as Error).message}`);
    }
  }

  function identitiesOrDeny(selectors: Selector[]): WorkloadIdentity[] {
    const identities = cache.identitiesFor(selectors);
    if (identities.length === 0) throw RpcError.permissionDenied('no identity issued');
    return identities;
  }

  /**
   * What a stream has shown: the SVIDs (by serial) of the workload's entries and the bundle's
   * authorities. Cheap to compute on every cache change, so unchanged streams are skipped without
   * building their messages.
   */
  function version(identities: WorkloadIdentity[]): string {
    const bundle = cache.bundle;
    return [
      bundle.sequenceNumber,
      bundle.x509Authorities.length,
      bundle.jwtAuthorities.length,
      ...identities.map((i) => `${i.entry.id}:${i.entry.revisionNumber}:${i.svid?.serial ?? '-'}`),
    ].join('|');
  }

  /** Streams the full state at once and again on every change, until the client leaves or loses its identity. */
  function streamUpdates<T>(
    call: grpc.ServerWritableStream<unknown, T>,
    selectors: Selector[],
    render: (identities: WorkloadIdentity[]) => T | undefined,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let last: string | undefined;
      const push = () => {
        try {
          const identities = identitiesOrDeny(selectors);
          const current = version(identities);
          if (current === last) return;
          const message = render(identities);
          if (message === undefined) return;
          last = current;
          call.write(message);
        } catch (error) {
          finish();
          reject(error);
        }
      };
      const finish = () => {
        cache.off('change', push);
        deps.onConnectionChange(-1);
      };
      deps.onConnectionChange(1);
      cache.on('change', push);
      call.on('cancelled', () => {
        finish();
        resolve();
      });
      push();
    });
  }

  return {
    FetchX509SVID: serverStream<X509SVIDRequest__Output, X509SVIDResponse>(
      SERVICE,
      'FetchX509SVID',
      observe,
      async (call) => {
        requireSecurityHeader(call);
        const selectors = await callerSelectors(call);
        identitiesOrDeny(selectors);
        await streamUpdates(call, selectors, (identities) => {
          // Wait until every matching entry has its SVID, so a workload never sees a partial set.
          if (identities.some((i) => !i.svid)) return undefined;
          const bundle = bundleDer(cache.bundle);
          return {
            svids: identities.map(({ entry, svid }) => ({
              spiffeId: entry.spiffeId,
              x509Svid: concat(svid!.certificateChain),
              x509SvidKey: svid!.privateKeyPkcs8,
              bundle,
              hint: entry.hint,
            })),
            crl: [],
            federatedBundles: {},
          };
        });
      },
    ),

    FetchX509Bundles: serverStream<X509BundlesRequest__Output, X509BundlesResponse>(
      SERVICE,
      'FetchX509Bundles',
      observe,
      async (call) => {
        requireSecurityHeader(call);
        const selectors = await callerSelectors(call);
        identitiesOrDeny(selectors);
        await streamUpdates(call, selectors, () => ({
          crl: [],
          bundles: { [`spiffe://${cache.bundle.trustDomain}`]: bundleDer(cache.bundle) },
        }));
      },
    ),

    FetchJWTBundles: serverStream<JWTBundlesRequest__Output, JWTBundlesResponse>(
      SERVICE,
      'FetchJWTBundles',
      observe,
      async (call) => {
        requireSecurityHeader(call);
        const selectors = await callerSelectors(call);
        identitiesOrDeny(selectors);
        await streamUpdates(call, selectors, () => ({
          bundles: {
            [`spiffe://${cache.bundle.trustDomain}`]: Buffer.from(
              toSpiffeBundleJson({ ...cache.bundle, x509Authorities: [] }),
            ),
          },
        }));
      },
    ),

    FetchJWTSVID: unary(SERVICE, 'FetchJWTSVID', observe, async (request, call): Promise<JWTSVIDResponse> => {
      requireSecurityHeader(call);
      const audience = request.audience.filter((a) => a !== '');
      if (audience.length === 0) throw RpcError.invalidArgument('audience must be specified');
      const tooMuch = jwtAudienceProblem(audience);
      if (tooMuch) throw RpcError.invalidArgument(tooMuch);
      if (request.spiffeId !== '') {
        try {
          SpiffeId.parse(request.spiffeId);
        } catch (error) {
          throw RpcError.invalidArgument(`invalid requested SPIFFE ID: ${(error as Error).message}`);
        }
      }
      const selectors = await callerSelectors(call);
      let identities = identitiesOrDeny(selectors);
      if (request.spiffeId !== '') {
        identities = identities.filter((i) => i.entry.spiffeId === request.spiffeId);
        if (identities.length === 0)
          throw RpcError.permissionDenied(`no identity issued for ${request.spiffeId}`);
      }
      const svids = [];
      for (const { entry } of identities) {
        const token = await deps.jwtSvids.fetch(entry.id, entry.spiffeId, audience);
        svids.push({ spiffeId: entry.spiffeId, svid: token, hint: entry.hint });
      }
      return { svids };
    }),

    ValidateJWTSVID: unary(
      SERVICE,
      'ValidateJWTSVID',
      observe,
      async (request, call): Promise<ValidateJWTSVIDResponse> => {
        requireSecurityHeader(call);
        if (request.audience === '') throw RpcError.invalidArgument('audience must be specified');
        if (request.svid === '') throw RpcError.invalidArgument('svid must be specified');
        try {
          const { spiffeId, claims } = await validateJwtSvid(request.svid, {
            bundle: cache.bundle,
            audience: request.audience,
          });
          return { spiffeId: spiffeId.toString(), claims: toStruct(claims) };
        } catch (error) {
          throw RpcError.invalidArgument((error as Error).message);
        }
      },
    ),
  };
}
