import { Context } from '@temporalio/activity';

/** Awaits `work`, heartbeating meanwhile: starting a process can outlast the heartbeat timeout on a loaded host. */
export async function heartbeating<T>(what: string, work: Promise<T>): Promise<T> {
  Context.current().heartbeat(what);
  const timer = setInterval(() => Context.current().heartbeat(what), 5000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
