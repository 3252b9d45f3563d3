import { Command, InvalidArgumentError } from 'commander';
import { TcpBalancer, parseHostPort, type Backend } from './tcp-balancer.js';

/** `tcp-balancer --listen HOST:PORT --backend HOST:PORT…`: runs until SIGTERM/SIGINT; logs JSON lines. */
function hostPort(value: string): Backend {
  try {
    return parseHostPort(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

const program = new Command('tcp-balancer')
  .requiredOption('--listen <host:port>', 'address to accept connections on', hostPort)
  .requiredOption(
    '--backend <host:port>',
    'a backend (repeat for each)',
    (v: string, all: Backend[] = []) => [...all, hostPort(v)],
  )
  .option('--health-interval-ms <ms>', 'TCP health check period', (v) => Number(v), 1000)
  .option('--connect-timeout-ms <ms>', 'connect timeout to a backend', (v) => Number(v), 1000);
program.parse();
const options = program.opts<{
  listen: Backend;
  backend: Backend[];
  healthIntervalMs: number;
  connectTimeoutMs: number;
}>();

const log = (msg: string, fields: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
const balancer = new TcpBalancer({
  listen: options.listen,
  backends: options.backend,
  healthCheckIntervalMs: options.healthIntervalMs,
  connectTimeoutMs: options.connectTimeoutMs,
  log,
});
const port = await balancer.start();
log('listening', { address: `${options.listen.host}:${port}`, backends: options.backend.length });
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void balancer.stop().then(() => process.exit(0)));
}
