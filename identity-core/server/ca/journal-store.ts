import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Datastore } from '../../datastore/datastore.js';
import { CaJournal } from '../../pki/ca-journal.js';
import type { KeyManager } from '../../pki/key-manager.js';

const JOURNAL_ID_FILE = 'ca-journal-id';

export interface JournalStoreOptions {
  datastore: Datastore;
  dataDir: string;
  keyManager: KeyManager;
  logger: Logger;
}

/**
 * The server's CA journal (its X.509 CA and JWT key slots), kept as SPIRE keeps it: the journal in the
 * datastore, the row's id in the data directory so that a restarted server finds its own journal.
 * Changes run one at a time.
 */
export class JournalStore {
  private current = new CaJournal();
  private id: number | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: JournalStoreOptions) {}

  /** Read afresh on every use: a failed transaction replaces the journal object. */
  get journal(): CaJournal {
    return this.current;
  }

  /** Runs journal changes one at a time, in order. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Runs a change; if it fails anywhere, the journal in memory is put back as it was before it. */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.current.toJSON();
    try {
      return await fn();
    } catch (error) {
      this.current = CaJournal.fromJSON(before);
      throw error;
    }
  }

  /**
   * Resumes the journal this server wrote before, if its keys are still there (disk key manager); with
   * the memory key manager, or keys gone, the server starts with new authorities, as SPIRE does.
   */
  async load(): Promise<void> {
    const idFile = join(this.options.dataDir, JOURNAL_ID_FILE);
    const text = await readFile(idFile, 'utf8').catch(() => undefined);
    if (!text) return;
    const record = await this.options.datastore.caJournals.load(Number(text.trim()));
    if (!record) return;
    // The row is reused even when its journal is not, so a restart does not leave orphans behind.
    this.id = record.id;
    const journal = CaJournal.fromJSON(record.data);
    for (const kind of ['x509', 'jwt'] as const) {
      for (const entry of journal.entries(kind)) {
        if (!(await this.options.keyManager.getKey(entry.keyId))) {
          this.options.logger.warn(
            { key_id: entry.keyId },
            'Journal keys are gone; starting with new authorities',
          );
          return;
        }
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const active = journal.current('x509');
    if (active && active.notAfter <= now) {
      this.options.logger.warn(
        { authority_id: active.authorityId },
        'Active X509 CA has expired; starting with new authorities',
      );
      return;
    }
    this.current = journal;
  }

  async save(): Promise<void> {
    this.id = await this.options.datastore.caJournals.save({
      ...(this.id !== undefined ? { id: this.id } : {}),
      data: this.current.toJSON(),
      activeX509AuthorityId: this.current.current('x509')?.authorityId ?? '',
    });
    await mkdir(this.options.dataDir, { recursive: true, mode: 0o700 });
    const idFile = join(this.options.dataDir, JOURNAL_ID_FILE);
    await writeFile(`${idFile}.tmp`, `${this.id}\n`);
    await rename(`${idFile}.tmp`, idFile);
  }
}
