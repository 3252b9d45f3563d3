/**
 * What a workload fetcher (workload-fetcher.ts) and its child process say to each other: one JSON
 * line per request on the child's stdin, one per answer on its stdout, in the same order.
 */
import { z } from 'zod';
import { fetchJwtSvid, fetchX509Svids } from './workload-fetch.js';

export const fetchRequestSchema = z.discriminatedUnion('kind', [
  z.object({
    id: z.number().int(),
    kind: z.literal('x509'),
    socket: z.string().min(1),
    gid: z.number().int().nonnegative(),
  }),
  z.object({
    id: z.number().int(),
    kind: z.literal('jwt'),
    socket: z.string().min(1),
    gid: z.number().int().nonnegative(),
    spiffeId: z.string().min(1),
    audience: z.string().min(1),
    timeoutMs: z.number().int().positive().optional(),
  }),
]);
export type FetchRequest = z.infer<typeof fetchRequestSchema>;

export const fetchAnswerSchema = z.object({
  id: z.number().int(),
  /** Each SVID served, its DER certificates in base64. */
  svids: z
    .array(z.object({ spiffeId: z.string(), chain: z.array(z.string()), bundle: z.array(z.string()) }))
    .optional(),
  token: z.string().optional(),
  error: z.string().optional(),
});
export type FetchAnswer = z.infer<typeof fetchAnswerSchema>;

const base64 = (ders: Buffer[]) => ders.map((d) => d.toString('base64'));

/**
 * Answers one request as a process of group `gid` (the child runs as root): the effective gid is
 * set before a new client connects and restored once the answer is in, so the agent's attestor sees
 * the workload's gid whether it reads it at connect (SO_PEERCRED) or from /proc during the call.
 * Requests must come one at a time.
 */
export async function answerFetchRequest(line: string): Promise<FetchAnswer> {
  let request: FetchRequest;
  try {
    request = fetchRequestSchema.parse(JSON.parse(line));
  } catch (error) {
    return { id: -1, error: `bad request: ${(error as Error).message}` };
  }
  const restore = process.getegid!();
  process.setegid!(request.gid);
  try {
    if (request.kind === 'x509') {
      const svids = await fetchX509Svids(request.socket);
      return {
        id: request.id,
        svids: svids.map((s) => ({ spiffeId: s.spiffeId, chain: base64(s.chain), bundle: base64(s.bundle) })),
      };
    }
    const token = await fetchJwtSvid(request.socket, request.spiffeId, request.audience, request.timeoutMs);
    return { id: request.id, token };
  } catch (error) {
    return { id: request.id, error: (error as Error).message };
  } finally {
    process.setegid!(restore);
  }
}
