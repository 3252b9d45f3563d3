/**
 * `workload-fetcher-main`: the child of a workload fetcher (workload-fetcher.ts). Reads fetch requests
 * as JSON lines on stdin, answers each in turn as a JSON line on stdout; exits when stdin closes.
 * Runs as root: it takes on each workload's group id for the length of one fetch.
 */
import { createInterface } from 'node:readline';
import { answerFetchRequest } from './workload-fetch-protocol.js';

let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  // One at a time: the effective gid is the whole process's.
  queue = queue.then(async () => {
    process.stdout.write(`${JSON.stringify(await answerFetchRequest(line))}\n`);
  });
});
lines.on('close', () => {
  void queue.then(() => process.exit(0));
});
