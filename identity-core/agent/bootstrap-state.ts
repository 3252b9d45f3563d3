/**
 * SPIRE's agent bootstrap state (its trust bundle source's use, start time and attempts, kept in the
 * data directory): when the agent first saw a server it could not verify, which is what
 * rebootstrap_delay counts from, and whether the next bootstrap is a rebootstrap. A start time of 0
 * means the agent is not (re)bootstrapping.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type BootstrapUse = 'bootstrap' | 'rebootstrap';

interface StoredBootstrapState {
  use: BootstrapUse;
  start_time_ms: number;
  connection_attempts: number;
}

const FILE = 'bootstrap-state.json';

export class BootstrapState {
  private state: StoredBootstrapState = { use: 'bootstrap', start_time_ms: 0, connection_attempts: 0 };

  /** `dataDir` undefined: the agent keeps nothing on disk (memory key manager), nor does this. */
  private constructor(private readonly dataDir: string | undefined) {}

  static async load(dataDir: string | undefined): Promise<BootstrapState> {
    const state = new BootstrapState(dataDir);
    if (dataDir === undefined) return state;
    try {
      const stored = JSON.parse(await readFile(join(dataDir, FILE), 'utf8')) as StoredBootstrapState;
      state.state = {
        use: stored.use === 'rebootstrap' ? 'rebootstrap' : 'bootstrap',
        start_time_ms: Number(stored.start_time_ms) || 0,
        connection_attempts: Number(stored.connection_attempts) || 0,
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return state;
  }

  get use(): BootstrapUse {
    return this.state.use;
  }

  get connectionAttempts(): number {
    return this.state.connection_attempts;
  }

  /** One more attempt to bootstrap from the trust bundle source; the start time set by the first. */
  async countAttempt(): Promise<void> {
    this.state.connection_attempts++;
    if (this.state.start_time_ms === 0) this.state.start_time_ms = Date.now();
    await this.save();
  }

  /** When the server first could not be verified; set to now by the first call after a success. */
  async startTime(): Promise<number> {
    if (this.state.start_time_ms === 0) {
      this.state.start_time_ms = Date.now();
      await this.save();
    }
    return this.state.start_time_ms;
  }

  /** The server was reached and verified: nothing is pending, the next bootstrap would be a rebootstrap. */
  async succeeded(): Promise<{ sinceMs: number; attempts: number } | undefined> {
    if (this.state.start_time_ms === 0 && this.state.use === 'rebootstrap') return undefined;
    const outcome = {
      sinceMs: this.state.start_time_ms === 0 ? 0 : Date.now() - this.state.start_time_ms,
      attempts: this.state.connection_attempts,
    };
    this.state = { use: 'rebootstrap', start_time_ms: 0, connection_attempts: 0 };
    await this.save();
    return outcome;
  }

  /** As `succeeded`, only while a start time is pending (SPIRE's SetSuccessIfRunning after a sync). */
  async succeededIfPending(): Promise<void> {
    if (this.state.start_time_ms !== 0) await this.succeeded();
  }

  /** The next start rebootstraps: counted from now. */
  async forceRebootstrap(): Promise<void> {
    this.state = { use: 'rebootstrap', start_time_ms: Date.now(), connection_attempts: 0 };
    await this.save();
  }

  private async save(): Promise<void> {
    if (this.dataDir === undefined) return;
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    const path = join(this.dataDir, FILE);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(this.state), { mode: 0o600 });
    await rename(temp, path);
  }
}
