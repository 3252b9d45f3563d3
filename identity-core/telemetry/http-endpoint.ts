import http from 'node:http';

export type Route = () => Promise<{ status: number; body: string; contentType?: string }>;

/** A tiny HTTP listener for /metrics and health paths; anything else is a 404. */
export async function serveHttp(
  host: string,
  port: number,
  routes: Record<string, Route>,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const route = routes[(req.url ?? '/').split('?')[0]!];
    if (!route || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    route().then(
      ({ status, body, contentType }) =>
        res.writeHead(status, { 'content-type': contentType ?? 'application/json' }).end(body),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
