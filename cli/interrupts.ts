/**
 * What SIGINT (Ctrl-C) and SIGTERM (a CI runner's timeout) mean while a command follows a run it
 * started: the first asks that run to stop the way it was built to (a drill aborts and heals, a suite
 * tears down its fresh deployment) and the command goes on following it to the end; the next one
 * leaves at once, after stopping what this process started (its dev server), and the run is left to
 * the next worker.
 */
interface Stoppable {
  what: string;
  stop: () => Promise<unknown>;
}

const err = (text: string) => process.stderr.write(`${text}\n`);
const runs = new Set<Stoppable>();
const onLeave = new Set<() => void>();
let installed = false;
let stopping = false;

function interrupted(signal: NodeJS.Signals): void {
  if (!stopping && runs.size > 0) {
    stopping = true;
    for (const run of runs) {
      err(
        `spire-drill: ${signal}: stopping ${run.what}; it heals and cleans up before it ends. ${signal === 'SIGINT' ? 'Ctrl-C' : 'Signal'} again to leave it as it is.`,
      );
      run.stop().catch((error: Error) => err(`spire-drill: could not stop ${run.what}: ${error.message}`));
    }
    return;
  }
  err(
    `spire-drill: ${signal}: leaving now${runs.size > 0 ? `; ${[...runs].map((r) => r.what).join(', ')} stays in Temporal` : ''}`,
  );
  for (const leave of onLeave) leave();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
}

/** While the returned release is not called, the first interrupt stops this run. */
export function stopOnInterrupt(what: string, stop: () => Promise<unknown>): () => void {
  install();
  const run = { what, stop };
  runs.add(run);
  return () => runs.delete(run);
}

/** Runs `fn` (synchronous, it runs just before exit) if the command leaves on an interrupt. */
export function beforeLeaving(fn: () => void): () => void {
  install();
  onLeave.add(fn);
  return () => onLeave.delete(fn);
}
