import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowUpdateStage } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../../deployment/deployment.js';
import { portAcceptsConnections } from '../../deployment/host/free-port.js';
import { loadTopology } from '../../deployment/topology/topology.js';
import { loadScenario } from '../../scenarios/scenario.js';
import type { DevServer } from '../../workers/dev-server.js';
import {
  drillUpdate,
  rotateUpdate,
  statusQuery,
  teardownUpdate,
  type deploymentWorkflow,
} from '../../workflows/deployment-workflow.js';
import { abortDrillSignal, drillStatusQuery, type drillWorkflow } from '../../workflows/drill-workflow.js';
import { TASK_QUEUE } from '../../workflows/search-attributes.js';
import { makeRunDir } from '../support/run-dir.js';
import { startTestDevServer } from '../support/test-dev-server.js';
import { killHard, runSpireDrill, startWorkerProcess } from '../support/spire-drill-process.js';
import { waitFor, waitingForWorker } from '../support/waits.js';
import { pinnedTool, repoRoot } from '../support/tools.js';

/**
 * A drill survives its worker: SIGKILLed mid-hold and replaced, the drill still heals and reaches a
 * verdict; SIGKILLed and never replaced, the fault's lease lapses and the deployment's watchdog heals
 * it. A drill run through the deployment workflow's `drill` update is its child; an operator abort
 * heals at once and ends the drill `aborted`.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(temporal.missing);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping: downstream servers run under their own group id, which needs root');

describe.skipIf(!!temporal.missing || !isRoot)('drills survive a dead worker', () => {
  const run = makeRunDir('sddr-');
  const home = join(run.dir, 'deployments');
  process.env.SPIRE_DRILL_HOME = home;
  const id = `dr-${process.pid}`;
  let server: DevServer;
  let client: Client;
  let worker: ChildProcess | undefined;
  let workers = 0;

  const startWorker = () => {
    worker = startWorkerProcess({
      address: server.address,
      home,
      logFile: join(run.dir, `worker-${++workers}.log`),
    });
  };
  const killWorker = async () => {
    await killHard(worker!);
    worker = undefined;
  };
  const startDrill = async (runId: string, outage: 'short' | 'long') => {
    const scenario = await loadScenario('lb-down', join(repoRoot, 'scenarios', 'catalogue'));
    return client.workflow.start<typeof drillWorkflow>('drillWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `drill/${runId}`,
      args: [{ runId, deploymentId: id, scenario, outage }],
    });
  };
  const whenHolding = async (runId: string) =>
    waitFor(
      `drill ${runId} to hold its fault`,
      async () =>
        (await client.workflow.getHandle(`drill/${runId}`).query(drillStatusQuery)).phase === 'holding' ||
        undefined,
      120_000,
    );
  const balancerPort = async () => (await Deployment.open(id)).plan.upstream.agentFacing;

  beforeAll(async () => {
    server = await startTestDevServer(run.dir);
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
    startWorker();
    const topology = await loadTopology(join(repoRoot, 'topologies', 'demo.yaml'));
    const handle = await client.workflow.start<typeof deploymentWorkflow>('deploymentWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `deployment/${id}`,
      args: [{ deploymentId: id, topology }],
    });
    await waitFor(
      'the deployment to be ready',
      async () => (await handle.query(statusQuery)).phase === 'ready' || undefined,
      180_000,
    );
  }, 240_000);

  afterAll(async () => {
    if (!worker) startWorker();
    await client.workflow
      .getHandle<typeof deploymentWorkflow>(`deployment/${id}`)
      .executeUpdate(teardownUpdate, { args: [{}] })
      .catch(() => undefined);
    await killWorker().catch(() => undefined);
    const deployment = await Deployment.open(id).catch(() => undefined);
    await deployment?.stopAll().catch(() => undefined);
    await deployment?.removeData().catch(() => undefined);
    await client?.connection.close();
    await server?.stop();
    run.remove();
  }, 120_000);

  it('heals and reaches a verdict when its worker is SIGKILLed mid-hold and a new one starts', async () => {
    const runId = `killed-${process.pid}`;
    const handle = await startDrill(runId, 'long');
    await whenHolding(runId);
    await killWorker();
    expect(await portAcceptsConnections(await balancerPort())).toBe(false);
    // The hold's next lease renewal (every 4 s) finds no worker; only then does a new one start.
    await waitingForWorker(client, `drill/${runId}`, 30_000);
    startWorker();
    const record = await handle.result();
    expect(record.injections.map((i) => `${i.action} ${i.state}`)).toEqual([
      'inject started',
      'inject done',
      'heal started',
      'heal done',
    ]);
    // A verdict about the deployment, not an error of the platform: the worker's death is not the drill's.
    expect(['passed', 'failed'], `${record.verdict}: ${record.reason}`).toContain(record.verdict);
    if (record.verdict === 'failed') console.warn(`drill after a worker kill failed: ${record.reason}`);
    expect(record.workloads.some((w) => w.predicted.loss === 'always')).toBe(true);
    expect(await portAcceptsConnections(await balancerPort())).toBe(true);
  }, 300_000);

  it('leaves no fault behind when its worker dies and never returns: the watchdog heals it', async () => {
    const runId = `orphan-${process.pid}`;
    const handle = await startDrill(runId, 'long');
    await whenHolding(runId);
    await killWorker();
    const killedAt = Date.now();
    const port = await balancerPort();
    expect(await portAcceptsConnections(port)).toBe(false);
    const runDir = (await Deployment.open(id)).plan.runDir;
    const healed = join(runDir, 'faults', `${runId}.healed.json`);
    const lease = join(runDir, 'faults', `${runId}.json`);
    // The watchdog heals, records that it did, then drops the lease.
    await waitFor(
      'the watchdog to heal the fault and drop its lease',
      async () => (existsSync(healed) && !existsSync(lease)) || undefined,
      60_000,
    );
    const healedAfter = Date.now() - killedAt;
    expect(await portAcceptsConnections(port)).toBe(true);
    // Healed by the lease running out, not by the dead worker: no sooner than a few seconds.
    expect(healedAfter).toBeGreaterThan(2000);
    // A worker that comes back later finds the fault healed and concludes the drill with that finding.
    startWorker();
    const record = await handle.result();
    expect(record.findings.join('\n')).toMatch(/watchdog/);
    expect(record.injections.at(-1)!.state).toBe('done');
  }, 300_000);

  it('runs a drill as a child of the deployment workflow, which refuses rotation and teardown meanwhile; an operator abort heals at once and ends it aborted', async () => {
    if (!worker) startWorker();
    const runId = `aborted-${process.pid}`;
    const lifecycle = client.workflow.getHandle<typeof deploymentWorkflow>(`deployment/${id}`);
    const scenario = await loadScenario('lb-down', join(repoRoot, 'scenarios', 'catalogue'));
    const update = await lifecycle.startUpdate(drillUpdate, {
      args: [{ runId, scenario, outage: 'long' }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await whenHolding(runId);
    const handle = client.workflow.getHandle<typeof drillWorkflow>(`drill/${runId}`);
    expect((await handle.describe()).parentExecution?.workflowId).toBe(`deployment/${id}`);
    expect((await lifecycle.query(statusQuery)).phase).toBe('drilling');
    await expect(lifecycle.executeUpdate(rotateUpdate, { args: [{ kind: 'x509' }] })).rejects.toThrow();
    await expect(lifecycle.executeUpdate(teardownUpdate, { args: [{}] })).rejects.toThrow();
    await handle.signal(abortDrillSignal, { reason: 'test abort' });
    const record = await handle.result();
    expect((await update.result()).verdict).toBe('aborted');
    expect((await lifecycle.query(statusQuery)).phase).toBe('ready');
    expect(record.verdict).toBe('aborted');
    expect(record.reason).toMatch(/test abort/);
    expect(record.fault!.end - record.fault!.start).toBeLessThan(30_000);
    expect(await portAcceptsConnections(await balancerPort())).toBe(true);
    // The Web UI finds it by its search attributes.
    const found = await waitFor(
      'the aborted drill in visibility',
      async () => {
        for await (const info of client.workflow.list({
          query: `Scenario='lb-down' AND OutageClass='long' AND Verdict='aborted' AND DeploymentId='${id}'`,
        }))
          if (info.workflowId === `drill/${runId}`) return info;
        return undefined;
      },
      30_000,
    );
    expect(found.status.name).toBe('COMPLETED');
  }, 300_000);

  it('creates a Temporal Schedule for a suite from the CLI, and refuses a bad cron', async () => {
    const cli = async (args: string[]) => {
      const r = await runSpireDrill(args, {
        env: { ...process.env, TEMPORAL_ADDRESS: server.address, SPIRE_DRILL_HOME: home },
        timeoutMs: 60_000,
      });
      return { code: r.code, out: r.stdout + r.stderr };
    };
    const made = await cli(['suite', 'schedule', 'ci', '--cron', '0 3 * * *']);
    expect(made.code, made.out).toBe(0);
    const schedule = client.schedule.getHandle('suite-ci');
    const description = await schedule.describe();
    expect(description.action.type).toBe('startWorkflow');
    expect(description.action.type === 'startWorkflow' && description.action.workflowType).toBe(
      'suiteWorkflow',
    );
    expect(JSON.stringify(description.spec)).toMatch(/3/);
    const bad = await cli(['suite', 'schedule', 'ci', '--cron', 'every night']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/not a cron expression/);
    await schedule.delete();
  }, 120_000);
});
