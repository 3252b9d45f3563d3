/** Keeps `run` in the foreground until SIGINT or SIGTERM (or a fatal error), then stops the service. */

export interface RunningService {
  stop(): Promise<void>;
  /** Resolves when the service must stop on its own, e.g. an agent that was banned. */
  fatal?: Promise<Error>;
}

export interface SignalSource {
  once(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  removeListener(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

/**
 * Resolves once the service has stopped: undefined after a signal, the error after a
 * fatal stop. Signal listeners are removed before stopping, so a second signal falls
 * back to Node's default and ends the process.
 */
export async function runUntilStopped(
  service: RunningService,
  signals: SignalSource,
): Promise<Error | undefined> {
  let onSignal = () => {};
  const signalled = new Promise<undefined>((resolve) => {
    onSignal = () => resolve(undefined);
    signals.once('SIGINT', onSignal);
    signals.once('SIGTERM', onSignal);
  });
  const outcome = await Promise.race([signalled, ...(service.fatal ? [service.fatal] : [])]);
  signals.removeListener('SIGINT', onSignal);
  signals.removeListener('SIGTERM', onSignal);
  await service.stop();
  return outcome;
}
