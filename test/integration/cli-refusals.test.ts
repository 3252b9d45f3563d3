import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../workers/dev-server.js';
import { makeRunDir } from '../support/run-dir.js';
import { runSpireDrill } from '../support/spire-drill-process.js';
import { startTestDevServer } from '../support/test-dev-server.js';
import { pinnedTool, repoRoot } from '../support/tools.js';

/**
 * Input the CLI can only judge against a real Temporal (ids that exist or not), refused with exit 2
 * and one line, before any workflow starts. No worker runs: nothing here may need one.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(`skipping: ${temporal.missing}`);

describe.skipIf(!!temporal.missing)('the CLI refuses unknown and taken ids', () => {
  const run = makeRunDir('sdref-');
  const home = join(run.dir, 'deployments');
  let server: DevServer;
  let client: Client;

  const cli = (args: string[]) =>
    runSpireDrill(args, {
      env: { ...process.env, TEMPORAL_ADDRESS: server.address, SPIRE_DRILL_HOME: home },
      timeoutMs: 120_000,
    });

  function expectRefused(result: { code: number; stdout: string; stderr: string }, says: RegExp) {
    const context = `exit ${result.code}\n${result.stdout}\n${result.stderr}`;
    expect(result.code, context).toBe(2);
    expect(result.stderr, context).not.toMatch(/^\s+at /m);
    expect(result.stderr.trim().split('\n'), context).toHaveLength(1);
    expect(result.stderr, context).toMatch(says);
  }

  beforeAll(async () => {
    server = await startTestDevServer(run.dir);
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
  }, 120_000);

  afterAll(async () => {
    await client?.connection.close();
    await server?.stop();
    run.remove();
  });

  it('refuses `up --id` for an id whose deployment exists, naming it and a way out', async () => {
    const topology = join(repoRoot, 'topologies', 'demo.yaml');
    const first = await cli(['up', '--topology', topology, '--id', 'taken', '--no-wait']);
    expect(first.code, first.stderr).toBe(0);
    const again = await cli(['up', '--topology', topology, '--id', 'taken']);
    expectRefused(
      again,
      /^spire-drill: deployment taken already exists.*; pick another --id or `spire-drill down taken`$/m,
    );
    expect(again.stderr).not.toMatch(/WorkflowExecutionAlreadyStarted/);
    await client.workflow.getHandle('deployment/taken').terminate('test done');
  });

  it.each([
    [['status', 'nosuch'], /no deployment nosuch/],
    [['rotate', 'nosuch'], /no deployment nosuch/],
    [['down', 'nosuch'], /no deployment nosuch/],
    [['drill', 'abort', 'nosuch'], /no running drill nosuch/],
  ])('refuses %j: the id is unknown', async (args, says) => {
    expectRefused(await cli(args), says);
  });

  it('refuses `drill run --deployment nosuch` before a drill workflow starts, and lists no run', async () => {
    const result = await cli(['drill', 'run', 'lb-down', '--outage', 'short', '--deployment', 'nosuch']);
    expectRefused(result, /^spire-drill: no deployment nosuch: `spire-drill list` shows the deployments$/m);
    const drills: string[] = [];
    for await (const info of client.workflow.list({ query: "WorkflowType = 'drillWorkflow'" }))
      drills.push(info.workflowId);
    expect(drills).toEqual([]);
    const listed = await cli(['drill', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });
});
