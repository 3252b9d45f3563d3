/**
 * Everything that differs between SPIRE implementations, behind one interface: which executables
 * run, the config files they read, how an agent's stored identity is read from its data
 * directory, and the admin operations on a server, which both do over SPIRE's admin gRPC API on
 * the server socket. A topology's `implementation` picks one (implementation-for.ts).
 */
import type { ServerAdmin } from './server-admin.js';
import type { AgentConfigChoices, ServerConfigChoices } from './spire-configs.js';

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
  renderServerConfig(choices: ServerConfigChoices): string;
  renderAgentConfig(choices: AgentConfigChoices): string;
  /** What the agent with this data directory has stored; undefined when it never attested. */
  storedAgentIdentity(dataDir: string): Promise<StoredAgentIdentity | undefined>;
  /** Makes the agent attest afresh at its next start (it forgets its stored identity). */
  forgetAgentIdentity(dataDir: string): Promise<void>;
  /** The admin operations on the server whose admin socket this is. */
  admin(socketPath: string): ServerAdmin;
}
