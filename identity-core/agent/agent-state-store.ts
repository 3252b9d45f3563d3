import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What the agent keeps in data_dir so a restart resumes with its identity instead of attesting again. */
export interface AgentState {
  spiffeId: string;
  /** Agent SVID chain, leaf first. */
  certificateChain: Buffer[];
  /** PKCS#8 DER of the agent SVID's key. */
  privateKeyPkcs8: Buffer;
  /** DER of the trust bundle's X.509 authorities last seen. */
  bundleAuthorities: Buffer[];
  /** Whether the server lets this agent attest again (x509pop yes, join_token no). */
  reattestable: boolean;
}

interface StoredState {
  spiffe_id: string;
  svid: string[];
  key: string;
  bundle: string[];
  /** Absent in files written before agents could re-attest: those were join_token agents. */
  reattestable?: boolean;
}

const FILE = 'agent-state.json';

/** Files mode 0600 in a 0700 directory, replaced atomically so a crash never leaves half a file. */
export class AgentStateStore {
  constructor(private readonly dataDir: string) {}

  async load(): Promise<AgentState | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dataDir, FILE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const stored = JSON.parse(text) as StoredState;
    return {
      spiffeId: stored.spiffe_id,
      certificateChain: stored.svid.map((c) => Buffer.from(c, 'base64')),
      privateKeyPkcs8: Buffer.from(stored.key, 'base64'),
      bundleAuthorities: stored.bundle.map((c) => Buffer.from(c, 'base64')),
      reattestable: stored.reattestable ?? false,
    };
  }

  async save(state: AgentState): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    const stored: StoredState = {
      spiffe_id: state.spiffeId,
      svid: state.certificateChain.map((c) => c.toString('base64')),
      key: state.privateKeyPkcs8.toString('base64'),
      bundle: state.bundleAuthorities.map((c) => c.toString('base64')),
      reattestable: state.reattestable,
    };
    const path = join(this.dataDir, FILE);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(stored), { mode: 0o600 });
    await rename(temp, path);
  }

  /** Forgets the identity and the bundle with it, e.g. after a ban, an eviction, or to rebootstrap. */
  async clear(): Promise<void> {
    await rm(join(this.dataDir, FILE), { force: true });
  }
}
