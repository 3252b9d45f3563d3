import type { PeerInfo, PeerTaggedServer } from '../transport/peer-tagged-server.js';
import { RpcError } from '../transport/rpc-error.js';
import type { AgentAuthorizer, AuthorizedAgent } from './agent-authorizer.js';

interface CallLike {
  getPeer(): string;
}

/**
 * Who may call what, as SPIRE's server decides it: admin methods only from the local Unix socket,
 * agent methods only from an authorized agent over mTLS, a few (attestation, bundle) from anyone.
 */
export class ApiAuthorization {
  constructor(
    private readonly peers: PeerTaggedServer,
    private readonly agents: AgentAuthorizer,
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
}
