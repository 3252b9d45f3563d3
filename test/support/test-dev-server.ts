import { join } from 'node:path';
import { freePort } from '../../deployment/host/free-port.js';
import { startDevServer, type DevServer } from '../../workers/dev-server.js';

/**
 * A headless pinned Temporal dev server keeping its database and log in `dir`. Pass the ports to
 * restart one on the same address (its database keeps the histories).
 */
export async function startTestDevServer(
  dir: string,
  ports?: { port: number; uiPort: number },
): Promise<DevServer> {
  return startDevServer({
    port: ports?.port ?? (await freePort()),
    uiPort: ports?.uiPort ?? (await freePort()),
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    headless: true,
  });
}
