import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { makeRunDir } from '../support/run-dir.js';
import { runSpireDrill } from '../support/spire-drill-process.js';
import { pinnedTool } from '../support/tools.js';

/** `spire-drill dev --port P` when P or the Web UI's port is taken: the reason and a way out, no stack. */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(`skipping: ${temporal.missing}`);

/** Holds a port (on 127.0.0.1, as the dev server binds) until closed. */
async function occupy(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}

describe.skipIf(!!temporal.missing)('spire-drill dev on a taken port', () => {
  const run = makeRunDir('sddev-');
  afterAll(() => run.remove());
  const env = { ...process.env, SPIRE_DRILL_HOME: join(run.dir, 'deployments') };

  /** A gRPC port whose Web UI port (+1000) is free too, so that only the one the test holds is taken. */
  async function portPair(): Promise<number> {
    for (;;) {
      const port = await freePort();
      if (port + 1000 > 65535) continue;
      const ui = await occupy(port + 1000).catch(() => undefined);
      if (!ui) continue;
      await new Promise((r) => ui.close(r));
      return port;
    }
  }

  function expectOneLine(result: { code: number; stdout: string; stderr: string }, says: RegExp) {
    const context = `exit ${result.code}\n${result.stdout}\n${result.stderr}`;
    expect(result.code, context).toBe(1);
    expect(result.stderr, context).not.toMatch(/^\s+at /m);
    expect(result.stderr.trim().split('\n'), context).toHaveLength(1);
    expect(result.stderr, context).toMatch(says);
  }

  it("says the Web UI port is in use, from the dev server's log, and how to pick others", async () => {
    const port = await portPair();
    const held = await occupy(port + 1000);
    try {
      const result = await runSpireDrill(['dev', '--port', String(port)], { env, timeoutMs: 120_000 });
      expectOneLine(
        result,
        new RegExp(
          `can't set UI port ${port + 1000}: .*address already in use.*--port P \\(gRPC on P, the Web UI on P\\+1000\\)`,
        ),
      );
    } finally {
      await new Promise((r) => held.close(r));
    }
  }, 150_000);

  it('refuses a gRPC port something already answers on', async () => {
    const port = await portPair();
    const held = await occupy(port);
    try {
      const result = await runSpireDrill(['dev', '--port', String(port)], { env, timeoutMs: 120_000 });
      expectOneLine(result, new RegExp(`^spire-drill: 127\\.0\\.0\\.1:${port} is in use .*--port P`));
    } finally {
      await new Promise((r) => held.close(r));
    }
  }, 150_000);
});
