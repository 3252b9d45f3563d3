/**
 * `probe --socket PATH --spiffe-id ID --listen-port N --peer-port N --peer-id ID --samples FILE
 * --audience AUD --svid-dir DIR`: one probe workload (see probe.ts) until SIGTERM/SIGINT; logs JSON
 * lines. Bad arguments exit 2 with the reason.
 */
import { Command } from 'commander';
import { z } from 'zod';
import { SpiffeId } from '../../identity-core/spiffe/spiffe-id.js';
import { startProbe } from './probe.js';

const port = (flag: string) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${flag}: expected a TCP port (1–65535)` })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, { error: `${flag}: a TCP port is between 1 and 65535` });

const spiffeId = (flag: string) =>
  z.string().superRefine((value, ctx) => {
    try {
      SpiffeId.parse(value);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `${flag}: "${value}" is not a SPIFFE ID: ${(error as Error).message}`,
      });
    }
  });

const nonEmpty = (flag: string) => z.string().min(1, { error: `${flag} must not be empty` });

const argumentsSchema = z.object({
  socket: nonEmpty('--socket'),
  spiffeId: spiffeId('--spiffe-id'),
  listenPort: port('--listen-port'),
  peerPort: port('--peer-port'),
  peerId: spiffeId('--peer-id'),
  samples: nonEmpty('--samples'),
  audience: nonEmpty('--audience'),
  svidDir: nonEmpty('--svid-dir'),
});

const program = new Command('probe')
  .requiredOption('--socket <path>', "the agent's Workload API socket")
  .requiredOption('--spiffe-id <id>', 'the SPIFFE ID this probe is (it picks its SVID by it)')
  .requiredOption('--listen-port <port>', 'serve mTLS on 127.0.0.1:<port>')
  .requiredOption('--peer-port <port>', "the peer probe's port, dialled every second")
  .requiredOption('--peer-id <id>', "the peer's SPIFFE ID, required of its certificate")
  .requiredOption('--samples <file>', 'append samples here, one JSON line each')
  .requiredOption('--audience <audience>', 'audience of the JWT-SVID fetched every second')
  .requiredOption('--svid-dir <dir>', 'keep every SVID received here, and the current bundle')
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
program.parse();
const parsed = argumentsSchema.safeParse(program.opts());
if (!parsed.success) {
  for (const issue of parsed.error.issues) process.stderr.write(`probe: ${issue.message}\n`);
  process.exit(2);
}
const options = parsed.data;

const log = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
const probe = await startProbe({
  socket: options.socket,
  spiffeId: options.spiffeId,
  listenPort: options.listenPort,
  peerPort: options.peerPort,
  peerId: options.peerId,
  samplesFile: options.samples,
  audience: options.audience,
  svidDir: options.svidDir,
  log,
}).catch((error: Error) => {
  process.stderr.write(`probe: could not start: ${error.message}\n`);
  process.exit(1);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void probe.stop().then(() => process.exit(0)));
}
