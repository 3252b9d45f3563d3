/**
 * Everything that differs between SPIRE implementations, behind one interface: which executables
 * run, the config files they read, their embedded datastore, how an agent's stored identity is read
 * from its data directory, what their logs say, and the admin operations on a server, which both do
 * over SPIRE's admin gRPC API on the server socket. A topology's `implementation` (per server
 * group) picks one (implementation-for.ts).
 */
import type { ServerAdmin } from './server-admin.js';
import type { AgentConfigChoices, DatabaseChoice, ServerConfigChoices } from './spire-configs.js';

export type ImplementationName = 'tspire' | 'spire';

/** How to run one executable: `command` with `prefix` before its own arguments. */
export interface Program {
  command: string;
  prefix: string[];
  /** Its name, which its pid and log files in the run directory carry. */
  name: string;
}

/** The identity an agent keeps in its data directory, so that a restart resumes with it. */
export interface StoredAgentIdentity {
  spiffeId: string;
  /** Its own SVID chain, DER, leaf first. */
  chain: Buffer[];
  /** PKCS#8 DER of its SVID's key. */
  key: Buffer;
  /** DER of the roots of the bundle it last saw. */
  bundleRoots: Buffer[];
}

export interface SpireImplementation {
  name: ImplementationName;
  program(role: 'server' | 'agent'): Program;
  /**
   * Why a server of this implementation cannot run here on a datastore of this type (its programs
   * are not built, or built without that datastore); undefined when it can.
   */
  unavailable(database: DatabaseChoice['type']): string | undefined;
  /** The embedded datastore (`datastore: embedded`) of the one server of the group in `groupDir`. */
  embeddedDatabase(groupDir: string): DatabaseChoice;
  renderServerConfig(choices: ServerConfigChoices): string;
  renderAgentConfig(choices: AgentConfigChoices): string;
  /** What the agent with this data directory has stored; undefined when it never attested. */
  storedAgentIdentity(dataDir: string): Promise<StoredAgentIdentity | undefined>;
  /** Makes the agent attest afresh at its next start (it forgets its stored identity). */
  forgetAgentIdentity(dataDir: string): Promise<void>;
  /**
   * When this line of a server's log records a failed periodic reload of its entry cache: the time
   * it was written, in ms since the epoch; undefined for any other line.
   */
  entryCacheReloadFailedAt(logLine: string): number | undefined;
  /**
   * Whether a downstream server of this implementation keeps its upstream's JWT keys in its bundle
   * after the upstream revokes them (until they expire): SPIRE v1.13.3 appends the upstream's JWT
   * keys and never drops one (where it replaces the X.509 roots).
   */
  keepsRevokedUpstreamJwtKeys: boolean;
  /** The admin operations on the server whose admin socket this is. */
  admin(socketPath: string): ServerAdmin;
}
