import { readFileSync } from 'node:fs';
import net from 'node:net';

/** The kernel's range for outgoing connections' source ports: listeners chosen inside it can be taken by any connect(). */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low && high) return [low, high];
  } catch {
    // not Linux: assume the IANA dynamic range
  }
  return [49152, 65535];
}

const handedOut = new Set<number>();

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range, so that a
 * planned port is not taken by some outgoing connection before its server binds it; never the same
 * port twice in one process.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const top = Math.min(low, 65536);
  const bottom = top > 12_000 ? 10_000 : 1024;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (handedOut.has(port)) continue;
    if (await tryListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port found on 127.0.0.1 between ${bottom} and ${top - 1}`);
}

function acceptsConnections(to: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(to);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (a leftover listener, say). */
export const portAcceptsConnections = (port: number): Promise<boolean> =>
  acceptsConnections({ host: '127.0.0.1', port });

/** Whether something listens on the Unix socket at `path`. */
export const socketAcceptsConnections = (path: string): Promise<boolean> => acceptsConnections({ path });
