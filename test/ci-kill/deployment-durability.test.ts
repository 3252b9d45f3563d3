import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowUpdateStage } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Deployment } from '../../deployment/deployment.js';
import { withWorkloadFetcher } from '../../deployment/probes/workload-fetcher.js';
import { freePort } from '../../deployment/host/free-port.js';
import { loadTopology } from '../../deployment/topology/topology.js';
import { x509AuthorityId } from '../../identity-core/spiffe/trust-bundle.js';
import type { DevServer } from '../../workers/dev-server.js';
import {
  abortSignal,
  rotateUpdate,
  statusQuery,
  teardownUpdate,
  type deploymentWorkflow,
} from '../../workflows/deployment-workflow.js';
import { DeploymentId, TASK_QUEUE, TrustDomain } from '../../workflows/search-attributes.js';
import { postgresAvailable } from '../support/postgres.js';
import { makeRunDir } from '../support/run-dir.js';
import { startTestDevServer } from '../support/test-dev-server.js';
import { processCounts } from '../support/host.js';
import { killHard, startWorkerProcess } from '../support/spire-drill-process.js';
import { activityRunning, waitFor } from '../support/waits.js';
import { pinnedTool, repoRoot } from '../support/tools.js';

/**
 * Durability: the worker is SIGKILLed in the middle of a spin-up and of a rotation, and the Temporal
 * dev server restarted (same database file) during a rotation; each time the workflow completes with
 * a new worker and no process of the deployment runs twice.
 */
const temporal = pinnedTool('temporal');
if (temporal.missing) console.warn(temporal.missing);
const pg = await postgresAvailable();
if (!pg.ok) console.warn(pg.reason);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping: downstream servers run under their own group id, which needs root');

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

describe.skipIf(!!temporal.missing || !pg.ok || !isRoot)('deployment workflows survive crashes', () => {
  const run = makeRunDir('sddu-');
  const home = join(run.dir, 'deployments');
  process.env.SPIRE_DRILL_HOME = home;
  const id = `du-${process.pid}`;
  let port: number;
  let uiPort: number;
  let server: DevServer;
  let client: Client;
  let worker: ChildProcess | undefined;

  const startServer = () => startTestDevServer(run.dir, { port, uiPort });
  const startWorker = (name: string) => {
    worker = startWorkerProcess({ address: server.address, home, logFile: join(run.dir, `${name}.log`) });
    return worker;
  };
  const killWorker = () => killHard(worker!);
  const handle = () => client.workflow.getHandle<typeof deploymentWorkflow>(`deployment/${id}`);
  const steps = async () => (await handle().query(statusQuery)).steps;

  beforeAll(async () => {
    port = await freePort();
    uiPort = await freePort();
    server = await startServer();
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
  }, 120_000);

  afterAll(async () => {
    worker?.kill('SIGKILL');
    const deployment = await Deployment.open(id).catch(() => undefined);
    await deployment?.stopAll().catch(() => undefined);
    await deployment?.removeData().catch(() => undefined);
    await client?.connection.close();
    await server?.stop();
    run.remove();
  }, 120_000);

  it('finishes a spin-up whose worker was SIGKILLed mid-way, without duplicate processes', async () => {
    const demo = parse(readFileSync(join(repoRoot, 'topologies', 'demo.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const file = join(run.dir, 'topology.yaml');
    writeFileSync(file, stringify({ ...demo, upstream: { servers: 1, datastore: { postgres: ADMIN_URL } } }));
    const topology = await loadTopology(file);
    startWorker('worker-1');
    await client.workflow.start<typeof deploymentWorkflow>('deploymentWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `deployment/${id}`,
      args: [{ deploymentId: id, topology }],
      typedSearchAttributes: [
        { key: DeploymentId, value: id },
        { key: TrustDomain, value: topology.trustDomain },
      ],
    });
    await waitFor(
      'the downstream bootstrap to start',
      async () => (await steps()).some((s) => s.startsWith('bootstrapping downstream')) || undefined,
      120_000,
    );
    await killWorker();
    startWorker('worker-2');
    await waitFor(
      'the deployment to be ready',
      async () => (await handle().query(statusQuery)).phase === 'ready' || undefined,
      180_000,
    );
    const counts = processCounts(join(home, id));
    expect(
      Object.values(counts).every((n) => n === 1),
      JSON.stringify(counts),
    ).toBe(true);
    const probes = Object.keys(counts).filter((key) => key.startsWith('/probes/'));
    // Upstream server; east's upstream agent, relay, server and agent; a probe per workload.
    expect(Object.keys(counts).length - probes.length, JSON.stringify(counts)).toBe(5);
    expect(probes).toHaveLength((await handle().query(statusQuery)).workloads!.workloads);
  }, 300_000);

  it('finishes a rotation whose worker was SIGKILLed mid-way', async () => {
    const update = await handle().startUpdate(rotateUpdate, {
      args: [{ kind: 'x509' }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // Killed while the rotation waits for every bundle to trust the new authority: mid-way.
    await activityRunning(client, `rotate/${id}/1`, 'waitBundles', 60_000);
    await killWorker();
    startWorker('worker-3');
    const result = await update.result();
    expect(result.newAuthority).not.toBe(result.oldAuthority);
    const slots = await (await Deployment.open(id)).workloads();
    for (const { svid } of await withWorkloadFetcher((fetcher) => fetcher.workloadSvids(slots)))
      expect(svid!.bundle.map((d) => x509AuthorityId(d))).toEqual([result.newAuthority]);
    const counts = processCounts(join(home, id));
    expect(
      Object.values(counts).every((n) => n === 1),
      JSON.stringify(counts),
    ).toBe(true);
  }, 300_000);

  it('finishes a rotation across a restart of the Temporal server', async () => {
    await handle().startUpdate(rotateUpdate, {
      args: [{ kind: 'x509' }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await activityRunning(client, `rotate/${id}/2`, 'waitBundles', 60_000);
    await server.stop();
    server = await startServer();
    await client.connection.close();
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
    await waitFor(
      'the second rotation to complete',
      async () => (await handle().query(statusQuery)).rotations.length === 2 || undefined,
      240_000,
    );
    const status = await handle().query(statusQuery);
    expect(status.phase).toBe('ready');

    // An operator aborts a third rotation: the update fails with the reason, the deployment stays usable.
    const third = await handle().startUpdate(rotateUpdate, {
      args: [{ kind: 'jwt' }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await handle().signal(abortSignal, { reason: 'operator changed their mind' });
    await expect(third.result()).rejects.toThrow();
    await waitFor(
      'the deployment back to ready',
      async () => (await handle().query(statusQuery)).phase === 'ready' || undefined,
      60_000,
    );
    expect((await handle().query(statusQuery)).steps.join('\n')).toMatch(
      /abort requested: operator changed their mind/,
    );

    const result = await handle().executeUpdate(teardownUpdate, { args: [{}] });
    expect(result.leftovers).toEqual([]);
    expect(processCounts(join(home, id))).toEqual({});
  }, 300_000);
});
