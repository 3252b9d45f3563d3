import type { PeerInfo, PeerTaggedServer } from '../transport/peer-tagged-server.js';
import { RpcError } from '../transport/rpc-error.js';
import type { AgentAuthorizer, AuthorizedAgent } from './agent-authorizer.js';
import type { DownstreamAuthorizer } from './downstream-authorizer.js';

interface CallLike {
  getPeer(): string;
}

/**
 * Who may call what, as SPIRE's server decides it: admin methods only from the local Unix socket,
 * agent methods only from an authorized agent over mTLS, downstream methods only from a
 * workload of a `downstream` entry over mTLS, a few (attestation, bundle) from anyone.
 */
export class ApiAuthorization {
  constructor(
    private readonly peers: PeerTaggedServer,
    private readonly agents: AgentAuthorizer,
    private readonly downstreams: DownstreamAuthorizer,
  ) {}

  peer(call: CallLike): PeerInfo | undefined {
    return this.peers.peerOf(call);
  }

  /** Admin calls: the caller reached the private socket, whose file permissions are the access control. */
  local(call: CallLike, method: string): void {
    if (this.peers.peerOf(call)?.kind !== 'unix') {
      throw RpcError.permissionDenied(
        `authorization denied for method ${method}: admin methods are served on the local socket only`,
      );
    }
  }

  agent(call: CallLike): Promise<AuthorizedAgent> {
    return this.agents.authorize(this.peers.peerOf(call));
  }

  /** Downstream calls (a CA for a nested server, JWT key publication): the caller's SPIFFE ID. */
  downstream(call: CallLike): Promise<string> {
    return this.downstreams.authorize(this.peers.peerOf(call));
  }
}
