export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `pending` (what is still awaited, or undefined once nothing is) every `everyMs` until it
 * clears; past `deadline` (ms since the epoch) throws with `giveUp`'s words on what was last awaited.
 */
export async function pollUntilDone(
  pending: () => Promise<string | undefined>,
  deadline: number,
  giveUp: (waited: string) => string,
  everyMs = 250,
): Promise<void> {
  for (let waiting = await pending(); waiting; waiting = await pending()) {
    if (Date.now() > deadline) throw new Error(giveUp(waiting));
    await sleep(everyMs);
  }
}
