import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { AttestedNode } from '../datastore/records.js';
import type { TrustBundle } from '../spiffe/trust-bundle.js';
import { verifyX509Svid } from '../spiffe/x509-svid.js';
import { RpcError } from '../transport/rpc-error.js';
import type { PeerInfo } from '../transport/peer-tagged-server.js';
import type { AttestedNodeCache } from './attested-node-cache.js';

export interface AttestedNodeLookup {
  get(spiffeId: string): Promise<AttestedNode | undefined>;
  updateSerials(
    spiffeId: string,
    serials: {
      certSerialNumber?: string;
      certNotAfter?: number;
      newCertSerialNumber?: string;
      newCertNotAfter?: number;
    },
  ): Promise<void>;
}

export interface AuthorizedAgent {
  agentId: string;
  svid: X509Certificate;
  node: AttestedNode;
}

const VERIFIED_FOR_MS = 30_000;

/** SPIRE's max_attested_node_info_staleness: trust a cached node this young instead of the datastore. */
export interface NodeCacheOption {
  cache: AttestedNodeCache;
  stalenessMs: number;
  /** Called for each call authorized from the cache alone. */
  onCacheHit(): void;
}

/** Decimal serial, as SPIRE stores it (big.Int.String()). */
export function decimalSerial(cert: X509Certificate): string {
  return BigInt(`0x${cert.serialNumber}`).toString(10);
}

/**
 * Decides whether the caller is a live agent, as SPIRE does: a valid SVID of this trust domain's
 * /spire/agent/ namespace, not expired, and an attested node in the datastore that is not banned and
 * whose current (or freshly renewed) serial matches. The node lookup reads the datastore unless a
 * node cache is given (max_attested_node_info_staleness), whose fresh copy with the caller's serial is
 * enough on its own; a stale, missing or mismatching copy is looked up in the datastore as before.
 */
export class AgentAuthorizer {
  /**
   * Chain verification per connection: every call on a connection presents the same chain, and
   * verifying it was a third of the server's CPU at 1,000 syncing agents. Redone when the bundle
   * changes (a revoked root) and at least every VERIFIED_FOR_MS (an intermediate that expired).
   */
  private readonly verified = new WeakMap<
    PeerInfo,
    { agentId: string; sequence: number; at: number; leaf: X509Certificate }
  >();

  constructor(
    private readonly trustDomain: string,
    private readonly nodes: AttestedNodeLookup,
    private readonly bundle: () => Promise<TrustBundle>,
    private readonly logger: Logger,
    private readonly nodeCache?: NodeCacheOption,
  ) {}

  async authorize(peer: PeerInfo | undefined, now = Date.now()): Promise<AuthorizedAgent> {
    if (!peer || peer.kind !== 'tls' || peer.certificateChain.length === 0) {
      throw RpcError.unauthenticated('caller is not authenticated: no client certificate presented');
    }
    const cached = this.verified.get(peer);
    // SPIRE authenticates a connection once, in its TLS handshake, so calls on a connection already
    // verified go on while the bundle cannot be read (datastore down); only a new connection needs it.
    let bundle: TrustBundle | undefined;
    let bundleError: unknown;
    try {
      bundle = await this.bundle();
    } catch (error) {
      bundleError = error;
    }
    const leaf = cached?.leaf ?? new X509Certificate(peer.certificateChain[0]!);
    const agentNotAfter = new Date(leaf.validTo).getTime();
    let agentId: string;
    if (
      cached &&
      (!bundle || (cached.sequence === bundle.sequenceNumber && now - cached.at < VERIFIED_FOR_MS))
    ) {
      agentId = cached.agentId;
    } else if (!bundle) {
      throw RpcError.internal(`failed to fetch bundle: ${(bundleError as Error).message}`);
    } else
      try {
        const verified = verifyX509Svid(
          peer.certificateChain,
          bundle.x509Authorities.map((a) => a.der),
          // Expiry is judged below so an expired agent gets SPIRE's own answer.
          Math.min(now, agentNotAfter - 1),
        );
        agentId = verified.spiffeId.toString();
        if (
          verified.spiffeId.trustDomain !== this.trustDomain ||
          !verified.spiffeId.path.startsWith('/spire/agent/')
        ) {
          throw new Error(`${agentId} is not an agent of trust domain ${this.trustDomain}`);
        }
        this.verified.set(peer, { agentId, sequence: bundle.sequenceNumber, at: now, leaf });
      } catch (error) {
        throw RpcError.unauthenticated(
          `caller is not an agent of this trust domain: ${(error as Error).message}`,
        );
      }

    if (now > agentNotAfter) {
      this.logger.error({ caller_id: agentId }, 'Agent SVID is expired');
      throw RpcError.permissionDenied(`agent "${agentId}" SVID is expired`);
    }
    const serial = decimalSerial(leaf);
    const fromCache = this.nodeCache?.cache.lookup(agentId);
    if (
      fromCache &&
      now - fromCache.at < this.nodeCache!.stalenessMs &&
      fromCache.node.certSerialNumber !== '' &&
      fromCache.node.certSerialNumber === serial
    ) {
      this.nodeCache!.onCacheHit();
      return { agentId, svid: leaf, node: fromCache.node };
    }
    let node: AttestedNode | undefined;
    try {
      node = await (this.nodeCache ? this.nodeCache.cache.fetch(agentId) : this.nodes.get(agentId));
    } catch (error) {
      this.logger.error({ caller_id: agentId, err: String(error) }, 'Unable to look up agent information');
      throw RpcError.internal(`unable to look up agent information: ${(error as Error).message}`);
    }
    if (!node) {
      this.logger.error({ caller_id: agentId }, 'Agent is not attested');
      throw RpcError.permissionDenied(`agent "${agentId}" is not attested`);
    }
    if (node.certSerialNumber === '') {
      this.logger.error({ caller_id: agentId }, 'Agent is banned');
      throw RpcError.permissionDenied(`agent "${agentId}" is banned`);
    }
    if (node.certSerialNumber === serial) return { agentId, svid: leaf, node };
    if (node.newCertSerialNumber === serial) {
      // The agent now uses the SVID it renewed: that serial becomes the current one.
      try {
        await this.nodes.updateSerials(agentId, {
          certSerialNumber: node.newCertSerialNumber,
          certNotAfter: node.newCertNotAfter,
          newCertSerialNumber: '',
          newCertNotAfter: 0,
        });
      } catch (error) {
        throw RpcError.internal(`unable to activate the new agent SVID: ${(error as Error).message}`);
      }
      return {
        agentId,
        svid: leaf,
        node: { ...node, certSerialNumber: serial, certNotAfter: node.newCertNotAfter },
      };
    }
    this.logger.error(
      { caller_id: agentId, svid_serial_number: serial, serial_number: node.certSerialNumber },
      'Agent SVID is not active',
    );
    throw RpcError.permissionDenied(
      `agent "${agentId}" expected to have serial number "${node.certSerialNumber}"; has "${serial}"`,
    );
  }
}
