/**
 * Fetches workloads' SVIDs as the workloads themselves. As root each workload slot has a group id of
 * its own (workload-identity.ts), and its agent hands an SVID only to a caller of that group; so the
 * fetches of a slot with a gid go through one long-lived child (workload-fetcher-main.ts) that takes
 * on each slot's gid in turn: a Node start per fetch, for polls every 500 ms, would cost the host
 * more than the deployment. Slots without a gid (not root) are fetched in this process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../host/package-root.js';
import { fetchJwtSvid, fetchX509Svids, type FetchedSvid } from './workload-fetch.js';
import { fetchAnswerSchema, type FetchAnswer, type FetchRequest } from './workload-fetch-protocol.js';

/** Where a workload fetches its identity, and under which group id (none: as this process). */
export interface WorkloadEndpoint {
  socket: string;
  gid?: number | undefined;
}

type Request = FetchRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

const CLOSE_GRACE_MS = 10_000;

export class WorkloadFetcher {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly pending = new Map<number, { resolve(a: FetchAnswer): void; reject(e: Error): void }>();
  private nextId = 0;
  private stderr = '';

  /** One FetchX509SVID answer as the workload: every SVID its agent serves it, or [] for none. */
  async x509Svids(endpoint: WorkloadEndpoint): Promise<FetchedSvid[]> {
    if (endpoint.gid === undefined) return fetchX509Svids(endpoint.socket);
    const answer = await this.ask({ kind: 'x509', socket: endpoint.socket, gid: endpoint.gid });
    if (answer.error !== undefined) throw new Error(answer.error);
    const ders = (list: string[]) => list.map((d) => Buffer.from(d, 'base64'));
    return (answer.svids ?? []).map((s) => ({
      spiffeId: s.spiffeId,
      chain: ders(s.chain),
      bundle: ders(s.bundle),
    }));
  }

  /** One JWT-SVID for the workload with one audience, as it would ask its agent for it. */
  async jwtSvid(
    endpoint: WorkloadEndpoint & { spiffeId: string },
    audience: string,
    timeoutMs?: number,
  ): Promise<string> {
    if (endpoint.gid === undefined)
      return fetchJwtSvid(endpoint.socket, endpoint.spiffeId, audience, timeoutMs);
    const answer = await this.ask({
      kind: 'jwt',
      socket: endpoint.socket,
      gid: endpoint.gid,
      spiffeId: endpoint.spiffeId,
      audience,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    if (answer.token === undefined) throw new Error(answer.error ?? 'the workload fetcher returned no token');
    return answer.token;
  }

  /** The SVID each workload slot holds now (undefined when its agent does not serve it one). */
  async workloadSvids<Slot extends WorkloadEndpoint & { spiffeId: string }>(
    slots: Slot[],
  ): Promise<{ slot: Slot; svid: FetchedSvid | undefined }[]> {
    // Slots sharing a socket and ids (not root) are served the same answer: one fetch for them.
    const key = (slot: Slot) => `${slot.socket}\n${slot.gid ?? ''}`;
    const answers = new Map<string, FetchedSvid[]>();
    for (const slot of slots) if (!answers.has(key(slot))) answers.set(key(slot), await this.x509Svids(slot));
    return slots.map((slot) => ({
      slot,
      svid: answers.get(key(slot))!.find((s) => s.spiffeId === slot.spiffeId),
    }));
  }

  /** Ends the child once it has answered what it was asked; safe to repeat. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private ask(request: Request): Promise<FetchAnswer> {
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise<FetchAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const script = join(packageRoot(), 'dist', 'deployment', 'probes', 'workload-fetcher-main.js');
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-2000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = fetchAnswerSchema.parse(JSON.parse(line));
      const waiting = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      waiting?.resolve(answer);
    });
    const fail = (why: string) => {
      if (this.child === child) this.child = undefined;
      const error = new Error(`the workload fetcher ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    child.once('error', (error) => fail(`could not run: ${error.message}`));
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal})`));
    // A write to a child that died fails here; its exit rejects what waits.
    child.stdin.on('error', () => undefined);
    return child;
  }
}

/** Runs `use` with a workload fetcher of its own, ended afterwards whatever happens. */
export async function withWorkloadFetcher<T>(use: (fetcher: WorkloadFetcher) => Promise<T>): Promise<T> {
  const fetcher = new WorkloadFetcher();
  try {
    return await use(fetcher);
  } finally {
    await fetcher.close();
  }
}
