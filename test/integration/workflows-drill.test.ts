import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScenario, type Scenario } from '../../scenarios/scenario.js';
import { loadTopology } from '../../deployment/topology/topology.js';
import { drillUpdate, statusQuery, type deploymentWorkflow } from '../../workflows/deployment-workflow.js';
import type { DevServer } from '../../workers/dev-server.js';
import {
  abortDrillSignal,
  drillStatusQuery,
  type DrillInput,
  type drillWorkflow,
} from '../../workflows/drill-workflow.js';
import { stopSuiteSignal, suiteStatusQuery, type suiteWorkflow } from '../../workflows/suite-workflow.js';
import { EAST_WORKLOAD, mockedDrillActivities } from '../support/mocked-drill-activities.js';
import { makeRunDir } from '../support/run-dir.js';
import { startTestDevServer } from '../support/test-dev-server.js';
import { pinnedTool, repoRoot } from '../support/tools.js';
import { waitFor } from '../support/waits.js';

/**
 * The drill and suite workflows' paths to each verdict, on the pinned Temporal dev server with the
 * compiled workflows and canned activities (test/support/mocked-drill-activities.ts): no deployment,
 * so every path takes a second or two, and the paths run side by side. RECORD_HISTORIES=1 refreshes
 * from these runs the drill and suite histories that the replay test checks the workflow code against.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(temporal.missing);

describe.skipIf(!!temporal.missing).concurrent('drill and suite workflows with mocked activities', () => {
  const run = makeRunDir('sdwf-');
  const taskQueue = `workflows-drill-${process.pid}`;
  const mocked = mockedDrillActivities();
  let server: DevServer;
  let client: Client;
  let stopWorker: () => Promise<void>;
  let lbDown: Scenario;

  /** lb-down with expectations any healthy run meets, and the given stop conditions. */
  const scenario = (name: string, stopConditions: Scenario['stopConditions'] = []): Scenario => ({
    ...lbDown,
    name,
    expectations: [{ expect: 'no-identity-loss' }, { expect: 'recovers' }],
    stopConditions,
  });
  const startDrill = (runId: string, of: Scenario = scenario('lb-down-mocked')) =>
    client.workflow.start<typeof drillWorkflow>('drillWorkflow', {
      taskQueue,
      workflowId: `drill/${runId}`,
      args: [{ runId, deploymentId: 'mocked', scenario: of, outage: 'short' } satisfies DrillInput],
    });
  const heals = (runId: string) =>
    mocked.concluded
      .get(runId)!
      .injections.filter((i) => i.action === 'heal')
      .map((i) => i.state);
  const record = async (workflowId: string, file: string) => {
    if (!process.env.RECORD_HISTORIES) return;
    const dir = join(repoRoot, 'test', 'replay', 'histories');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), historyToJSON(await client.workflow.getHandle(workflowId).fetchHistory()));
  };

  beforeAll(async () => {
    lbDown = await loadScenario('lb-down', join(repoRoot, 'scenarios', 'catalogue'));
    server = await startTestDevServer(run.dir);
    Runtime.install({ logger: new DefaultLogger('WARN') });
    const connection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowsPath: join(repoRoot, 'dist', 'workflows', 'index.js'),
      activities: mocked.activities,
    });
    const running = worker.run();
    stopWorker = async () => {
      worker.shutdown();
      await running;
      await connection.close();
    };
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
  }, 120_000);

  afterAll(async () => {
    await stopWorker?.();
    await client?.connection.close();
    await server?.stop();
    run.remove();
  }, 60_000);

  it('passes a drill whose expectations are met, healing and observing recovery on the way', async () => {
    const runId = `passes-${process.pid}`;
    const result = await (await startDrill(runId)).result();
    expect(result).toMatchObject({ verdict: 'passed', reason: '2 expectation(s) met' });
    expect(mocked.concluded.get(runId)!.forced).toBeUndefined();
    expect(Object.keys(mocked.concluded.get(runId)!.windows)).toEqual(['steady', 'fault', 'recovery']);
    expect(heals(runId)).toEqual(['started', 'done']);
    await record(`drill/${runId}`, 'drill-passed.json');
  });

  it('shows a deployment as ready again in its current details once a drill on it ends', async () => {
    const id = `details-${process.pid}`;
    const topology = await loadTopology(join(repoRoot, 'topologies', 'demo.yaml'));
    // Carried over as by continueAsNew: the deployment is up, so no spin-up activity runs.
    const deployment = await client.workflow.start<typeof deploymentWorkflow>('deploymentWorkflow', {
      taskQueue,
      workflowId: `deployment/${id}`,
      args: [{ deploymentId: id, topology, carried: { rotations: [], steps: [] } }],
    });
    try {
      const runId = `passes-details-${process.pid}`;
      const record = await deployment.executeUpdate(drillUpdate, {
        args: [{ runId, scenario: scenario('lb-down-mocked'), outage: 'short' }],
      });
      expect(record.verdict).toBe('passed');
      const status = await deployment.query(statusQuery);
      expect(status.phase).toBe('ready');
      const metadata = await deployment.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      expect(metadata.currentDetails).toBe(`**ready**: drill ${runId}: passed (${record.reason})`);
    } finally {
      await deployment.terminate('test done');
    }
  });

  it('fails a drill in which a workload lost its identity, on the judge’s evidence', async () => {
    const runId = `loses-identity-${process.pid}`;
    const result = await (await startDrill(runId)).result();
    expect(result.verdict).toBe('failed');
    expect(result.reason).toMatch(
      new RegExp(
        `^no workload loses its identity: ${EAST_WORKLOAD}: no valid SVID for \\d+\\.\\d s \\(model: never loss\\)$`,
      ),
    );
  });

  it('errs when the injection did not take, and heals all the same', async () => {
    const runId = `no-take-${process.pid}`;
    const result = await (await startDrill(runId)).result();
    expect(result).toMatchObject({
      verdict: 'errored',
      reason: 'the fault did not take effect: load balancer lb still accepts on :18081',
    });
    expect(heals(runId)).toEqual(['started', 'done']);
  });

  it('errs when healing fails, whatever the expectations say', async () => {
    const runId = `heal-fails-${process.pid}`;
    const result = await (await startDrill(runId)).result();
    expect(result.verdict).toBe('errored');
    expect(result.reason).toMatch(/^healing failed: .*load balancer lb did not start again/);
    expect(heals(runId)).toEqual(['started', 'failed']);
    expect(mocked.concluded.get(runId)!.windows.recovery).toBeUndefined();
  });

  it('aborts on the operator’s signal while holding, and heals at once', async () => {
    const runId = `holds-long-${process.pid}`;
    const handle = await startDrill(runId);
    await waitFor(
      'the drill to hold its fault',
      async () => (await handle.query(drillStatusQuery)).phase === 'holding' || undefined,
      20_000,
    );
    const signalled = Date.now();
    await handle.signal(abortDrillSignal, { reason: 'operator: enough' });
    const result = await handle.result();
    // The hold was a minute: the abort cut it short.
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(result).toMatchObject({ verdict: 'aborted', reason: 'operator: enough' });
    expect(mocked.concluded.get(runId)!.forced).toEqual({ verdict: 'aborted', reason: 'operator: enough' });
    expect(heals(runId)).toEqual(['started', 'done']);
  });

  it('aborts when the judge finds a stop condition holding', async () => {
    // Held long enough for the first stop check whatever the machine's load: a hold shorter than the
    // inject and confirm steps took would end before any check.
    const runId = `stops-holds-long-${process.pid}`;
    const result = await (
      await startDrill(runId, scenario('lb-down-stops', [{ stop: 'handshake-failures', max: 0.5 }]))
    ).result();
    expect(result).toMatchObject({
      verdict: 'aborted',
      reason: 'stop condition: 10 of 10 handshakes failed in the last 10 s (limit 50 %)',
    });
    expect(heals(runId)).toEqual(['started', 'done']);
  });

  it('runs a suite on after a failed drill (it has no option to stop there)', async () => {
    const result = await client.workflow.execute<typeof suiteWorkflow>('suiteWorkflow', {
      taskQueue,
      workflowId: `suite/after-failure-${process.pid}`,
      args: [
        {
          suite: 'mocked',
          deploymentId: 'mocked',
          drills: [
            { scenario: scenario('loses-identity'), outage: 'short' },
            { scenario: scenario('passes'), outage: 'short' },
          ],
        },
      ],
    });
    expect(result.drills.map((d) => d.verdict)).toEqual(['failed', 'passed']);
    expect(result.stopped).toBeUndefined();
  });

  it('stops a suite on signal: the running drill aborts and heals, no further drill starts', async () => {
    // Fixed: the suite names its drills from its workflow id, so the replay test replays under this one.
    const workflowId = 'suite/stopped';
    const handle = await client.workflow.start<typeof suiteWorkflow>('suiteWorkflow', {
      taskQueue,
      workflowId,
      args: [
        {
          suite: 'mocked',
          deploymentId: 'mocked',
          drills: [
            { scenario: scenario('holds-long'), outage: 'short' },
            { scenario: scenario('passes'), outage: 'short' },
            { scenario: scenario('passes'), outage: 'medium' },
          ],
        },
      ],
    });
    const drillRunId = await waitFor(
      'the suite’s first drill to hold its fault',
      async () => {
        const current = (await handle.query(suiteStatusQuery)).currentRunId;
        if (!current) return undefined;
        const phase = (await client.workflow.getHandle(`drill/${current}`).query(drillStatusQuery)).phase;
        return phase === 'holding' ? current : undefined;
      },
      20_000,
    );
    await handle.signal(stopSuiteSignal, { reason: 'operator: stop the suite' });
    const result = await handle.result();
    expect(result.drills.map((d) => [d.verdict, d.reason])).toEqual([
      ['aborted', 'operator: stop the suite'],
    ]);
    expect(result.stopped).toEqual({ reason: 'operator: stop the suite', notRun: 2 });
    expect(heals(drillRunId)).toEqual(['started', 'done']);
    await record(workflowId, 'suite-stopped.json');
  });
});
