import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { Command, Option } from 'commander';
import { deploymentsHome, validateDeploymentId } from '../deployment/deployment.js';
import { portAcceptsConnections } from '../deployment/host/free-port.js';
import { packageRoot } from '../deployment/host/package-root.js';
import {
  loadTopology,
  topologyWarnings,
  TopologyError,
  type Topology,
} from '../deployment/topology/topology.js';
import { DevServerExited, startDevServer } from '../workers/dev-server.js';
import {
  temporalSettings,
  workflowLink,
  DEV_SERVER_PORT,
  type TemporalSettings,
} from '../workers/temporal-settings.js';
import { createWorker } from '../workers/worker.js';
import {
  CliFailure,
  connect,
  err,
  failureExit,
  invalidFile,
  localTemporal,
  notFoundAsBadInput,
  out,
  usageErrors,
} from './cli-support.js';
import {
  addDrillCommands,
  drillOnDeployment,
  printDrill,
  reportFromStore,
  scenarioDirs,
} from './drill-commands.js';
import { addFidelityCommands } from './fidelity-commands.js';
import { loadScenario } from '../scenarios/scenario.js';
import { plural } from '../scenarios/plural.js';

/** The drill the demo runs between rotation and teardown: short, and every workload keeps its identity. */
const DEMO_DRILL = { scenario: 'lb-down', outage: 'short' } as const;
import {
  rotateUpdate,
  statusQuery,
  teardownUpdate,
  type deploymentWorkflow,
  type DeploymentStatusView,
} from '../workflows/deployment-workflow.js';
import { failureMessage } from '../workflows/failure-message.js';
import type { RotationResult } from '../workflows/rotation-workflow.js';
import { workloadLines } from './workload-lines.js';
import {
  DeploymentId,
  DeploymentStatus,
  Operation,
  TASK_QUEUE,
  TrustDomain,
} from '../workflows/search-attributes.js';

const workflowIdOf = (id: string) => `deployment/${id}`;

/** Prints the workflow's steps as they appear, until `done` says stop. */
async function follow(
  handle: WorkflowHandle<typeof deploymentWorkflow>,
  done: (status: DeploymentStatusView) => boolean,
  options: { json: boolean; from?: number },
): Promise<DeploymentStatusView> {
  let shown = options.from ?? 0;
  for (;;) {
    const status = await handle.query(statusQuery);
    if (!options.json) for (const line of status.steps.slice(shown)) out(`  ▸ ${line}`);
    shown = status.steps.length;
    if (done(status)) return status;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The topology and deployment id `up` would use, checked before Temporal is reached. */
async function upTarget(options: {
  topology: string;
  id?: string;
}): Promise<{ topology: Topology; id: string }> {
  let topology;
  try {
    topology = await loadTopology(options.topology);
  } catch (error) {
    if (error instanceof TopologyError) throw invalidFile(error);
    throw error;
  }
  const id = options.id ?? `${topology.name}-${randomBytes(3).toString('hex')}`;
  try {
    validateDeploymentId(id);
  } catch (error) {
    throw new CliFailure((error as Error).message, 2);
  }
  return { topology, id };
}

async function up(
  client: Client,
  settings: TemporalSettings,
  target: { topology: Topology; id: string },
  options: { topology: string; wait: boolean; json: boolean },
): Promise<DeploymentStatusView | undefined> {
  const { topology, id } = target;
  for (const warning of topologyWarnings(topology)) err(`warning: ${warning}`);
  const handle = await client.workflow
    .start<typeof deploymentWorkflow>('deploymentWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: workflowIdOf(id),
      args: [{ deploymentId: id, topology }],
      staticSummary: `Deployment ${id} (${topology.name}, trust domain ${topology.trustDomain})`,
      staticDetails: `${plural(topology.upstream.servers, 'upstream server')}${topology.upstream.loadBalancer ? ' behind a load balancer' : ''}, downstreams: ${topology.downstreams.map((d) => `${d.name} (${plural(d.agents, 'agent')} × ${plural(d.workloadsPerAgent, 'workload')})`).join(', ') || 'none'}. Updates: rotate, teardown. Query: status.`,
      typedSearchAttributes: [
        { key: DeploymentId, value: id },
        { key: TrustDomain, value: topology.trustDomain },
        { key: Operation, value: 'spin-up' },
      ],
    })
    .catch(async (error: unknown) => {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      throw new CliFailure(await alreadyExists(client, id), 2);
    });
  if (!options.json) {
    out(`Deployment ${id}: spinning up ${options.topology}`);
    out(`  Web UI: ${workflowLink(settings, handle.workflowId)}`);
  }
  if (!options.wait) {
    if (options.json) out(JSON.stringify({ deploymentId: id, workflowId: handle.workflowId }));
    return undefined;
  }
  const status = await follow(handle, (s) => s.phase !== 'spinning-up', options).catch(
    async (error: unknown) => {
      // A failed spin-up ends the workflow; its result carries the reason.
      const result = await handle.result().catch((e: unknown) => e);
      throw new CliFailure(`spin-up failed: ${(result as Error)?.message ?? (error as Error).message}`);
    },
  );
  if (status.phase !== 'ready') {
    const result = await handle.result().catch((e: unknown) => e);
    throw new CliFailure(`spin-up failed: ${status.error ?? (result as Error).message}`);
  }
  if (options.json) out(JSON.stringify(status));
  else
    out(
      `Deployment ${id} is ready: ${plural(status.workloads?.workloads ?? 0, 'workload')} ${(status.workloads?.workloads ?? 0) === 1 ? 'holds an SVID' : 'hold SVIDs'}.`,
    );
  return status;
}

/** Why `up --id` refuses an id whose deployment workflow is still running, with its phase and a way out. */
async function alreadyExists(client: Client, id: string): Promise<string> {
  const phase = await client.workflow
    .getHandle(workflowIdOf(id))
    .describe()
    .then((d) => d.typedSearchAttributes.get(DeploymentStatus))
    .catch(() => undefined);
  return `deployment ${id} already exists${phase ? ` (phase ${phase})` : ''}; pick another --id or \`spire-drill down ${id}\``;
}

/** A rotation's authorities, one line per upstream server (server 0 only for rotations recorded before). */
function serverRotationLines(rotation: RotationResult): string[] {
  return (rotation.servers ?? [{ server: 'upstream server 0', ...rotation }]).map(
    (s) => `${s.server}: ${s.oldAuthority} → ${s.newAuthority}`,
  );
}

async function rotate(
  client: Client,
  settings: TemporalSettings,
  id: string,
  options: { jwt: boolean; json: boolean },
): Promise<void> {
  const handle = client.workflow.getHandle<typeof deploymentWorkflow>(workflowIdOf(id));
  const status = await handle.query(statusQuery).catch(notFoundAsBadInput(`deployment ${id}`));
  const before = status.steps.length;
  const kind = options.jwt ? 'jwt' : 'x509';
  if (!options.json) {
    out(`Deployment ${id}: rotating the ${kind === 'x509' ? 'X.509 authority' : 'JWT key'}`);
    out(`  Web UI: ${workflowLink(settings, `rotate/${id}/${status.rotations.length + 1}`)}`);
  }
  let finished = false;
  const progress = follow(handle, () => finished, { json: options.json, from: before });
  try {
    const result = await handle.executeUpdate(rotateUpdate, { args: [{ kind }] });
    finished = true;
    await progress;
    if (options.json) out(JSON.stringify(result));
    else {
      out(`Rotated: ${result.oldAuthority} → ${result.newAuthority}`);
      for (const line of serverRotationLines(result)) out(`  ${line}`);
    }
  } catch (error) {
    finished = true;
    await progress.catch(() => undefined);
    const cause = failureMessage(error);
    throw new CliFailure(`rotation refused or failed: ${cause}`);
  }
}

async function down(
  client: Client,
  id: string,
  options: { json: boolean; keepData: boolean },
): Promise<void> {
  const handle = client.workflow.getHandle<typeof deploymentWorkflow>(workflowIdOf(id));
  const before = (await handle.query(statusQuery).catch(notFoundAsBadInput(`deployment ${id}`))).steps.length;
  if (!options.json) out(`Deployment ${id}: tearing down`);
  try {
    const result = await handle.executeUpdate(teardownUpdate, { args: [{ keepData: options.keepData }] });
    await handle.result();
    if (!options.json) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      for (const line of status?.steps.slice(before) ?? []) out(`  ▸ ${line}`);
      out(`Deployment ${id} is torn down; nothing left behind.`);
    } else out(JSON.stringify({ deploymentId: id, ...result }));
  } catch (error) {
    const cause = failureMessage(error);
    throw new CliFailure(`teardown refused or failed: ${cause}`);
  }
}

export function buildProgram(): Command {
  const program = usageErrors(new Command('spire-drill')).description(
    'Rehearse the life and the failures of a SPIFFE/SPIRE deployment, orchestrated by Temporal',
  );
  const json = new Option('--json', 'machine-readable output');

  program
    .command('dev')
    .description('start the pinned Temporal dev server (Web UI on) and a worker, until Ctrl-C')
    .option('--port <port>', 'gRPC port of the dev server', String(DEV_SERVER_PORT))
    .action(async (options: { port: string }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new CliFailure(`invalid port ${options.port}`, 2);
      // A server already answering on the port would pass the new one's readiness check: refuse first.
      if (await portAcceptsConnections(port))
        throw new CliFailure(
          `127.0.0.1:${port} is in use (a Temporal dev server running already?): pick other ports with --port P (gRPC on P, the Web UI on P+1000)`,
        );
      const home = deploymentsHome();
      mkdirSync(home, { recursive: true });
      const server = await startDevServer({
        port,
        uiPort: port + 1000,
        dbFile: join(home, '..', 'temporal.db'),
        logFile: join(home, '..', 'temporal.log'),
      }).catch((error: unknown) => {
        if (!(error instanceof DevServerExited) || !error.reason?.includes('address already in use'))
          throw error;
        throw new CliFailure(
          `the Temporal dev server cannot start: ${error.reason}; is one running already? Otherwise pick other ports with --port P (gRPC on P, the Web UI on P+1000)`,
        );
      });
      out(`Temporal dev server at ${server.address}; Web UI ${server.uiUrl}`);
      const { worker, connection } = await createWorker({ address: server.address, namespace: 'default' });
      out(`Worker on task queue ${TASK_QUEUE}. Ctrl-C stops both.`);
      const stop = () => worker.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await worker.run();
      await connection.close();
      await server.stop();
    });

  program
    .command('worker')
    .description('run a worker against TEMPORAL_ADDRESS until SIGTERM')
    .action(async () => {
      const settings = temporalSettings();
      const { worker, connection } = await createWorker({
        address: settings.address,
        namespace: settings.namespace,
      });
      process.once('SIGINT', () => worker.shutdown());
      process.once('SIGTERM', () => worker.shutdown());
      out(`Worker on ${settings.address}, task queue ${TASK_QUEUE}`);
      await worker.run();
      await connection.close();
    });

  program
    .command('up')
    .description('spin up a deployment from a topology file')
    .option('--topology <file>', 'topology YAML', join(packageRoot(), 'topologies', 'demo.yaml'))
    .option('--id <id>', 'deployment id (default: <topology name>-<random>)')
    .option('--no-wait', 'return once the workflow has started')
    .addOption(json)
    .action(async (options: { topology: string; id?: string; wait: boolean; json?: boolean }) => {
      const settings = temporalSettings();
      const target = await upTarget(options);
      await up(await connect(settings), settings, target, { ...options, json: options.json ?? false });
    });

  program
    .command('status')
    .argument('<id>', 'deployment id')
    .description("a deployment's phase, steps and rotations")
    .addOption(json)
    .action(async (id: string, options: { json?: boolean }) => {
      const settings = temporalSettings();
      const client = await connect(settings);
      const status = await client.workflow
        .getHandle<typeof deploymentWorkflow>(workflowIdOf(id))
        .query(statusQuery)
        .catch(notFoundAsBadInput(`deployment ${id}`));
      if (options.json) out(JSON.stringify(status));
      else {
        out(`Deployment ${id}: ${status.phase}${status.error ? ` (${status.error})` : ''}`);
        out(`  Web UI: ${workflowLink(settings, workflowIdOf(id))}`);
        for (const line of status.steps) out(`  ▸ ${line}`);
        for (const line of workloadLines(status.workloads?.list ?? [])) out(`  ${line}`);
        status.rotations.forEach((rotation, i) => {
          out(`  rotation ${i + 1} (${rotation.kind === 'x509' ? 'X.509 authority' : 'JWT key'}):`);
          for (const line of serverRotationLines(rotation)) out(`    ${line}`);
        });
      }
    });

  program
    .command('list')
    .description('deployments known to Temporal')
    .addOption(json)
    .action(async (options: { json?: boolean }) => {
      const client = await connect(temporalSettings());
      const rows: { workflowId: string; status: string; start: string }[] = [];
      for await (const info of client.workflow.list({ query: "WorkflowType = 'deploymentWorkflow'" }))
        rows.push({
          workflowId: info.workflowId,
          status: info.status.name,
          start: info.startTime.toISOString(),
        });
      if (options.json) out(JSON.stringify(rows));
      else
        for (const r of rows)
          out(`${r.workflowId.replace(/^deployment\//, '').padEnd(30)} ${r.status.padEnd(12)} ${r.start}`);
    });

  program
    .command('rotate')
    .argument('<id>', 'deployment id')
    .description(
      'forced rotation of the root X.509 authority (or --jwt key): prepare, activate, taint, revoke',
    )
    .option('--jwt', 'rotate the JWT key instead')
    .addOption(json)
    .action(async (id: string, options: { jwt?: boolean; json?: boolean }) => {
      const settings = temporalSettings();
      await rotate(await connect(settings), settings, id, {
        jwt: options.jwt ?? false,
        json: options.json ?? false,
      });
    });

  program
    .command('down')
    .argument('<id>', 'deployment id')
    .description('tear a deployment down and check nothing is left behind')
    .option('--keep-data', 'keep the run directory (logs, configs) and databases')
    .addOption(json)
    .action(async (id: string, options: { json?: boolean; keepData?: boolean }) => {
      await down(await connect(temporalSettings()), id, {
        json: options.json ?? false,
        keepData: options.keepData ?? false,
      });
    });

  program
    .command('demo')
    .description(
      'start what is needed, spin up topologies/demo.yaml, rotate the X.509 authority, run one drill, tear down',
    )
    .option('--keep', 'leave the deployment and the dev server running')
    .action(async (options: { keep?: boolean }) => {
      const started = Date.now();
      let drillVerdict: string | undefined;
      out('spire-drill demo: starting Temporal and a worker');
      const local = await localTemporal({ keepServer: options.keep ?? false });
      try {
        const client = await connect(local.settings);
        const id = `demo-${randomBytes(3).toString('hex')}`;
        const topology = join(packageRoot(), 'topologies', 'demo.yaml');
        await up(client, local.settings, await upTarget({ topology, id }), {
          topology,
          wait: true,
          json: false,
        });
        await rotate(client, local.settings, id, { jwt: false, json: false });
        const scenario = await loadScenario(DEMO_DRILL.scenario, scenarioDirs().catalogue);
        out(`Running one drill: ${scenario.name} at ${DEMO_DRILL.outage}`);
        const record = await drillOnDeployment(
          client,
          local.settings,
          id,
          scenario,
          DEMO_DRILL.outage,
          false,
        );
        printDrill(record);
        const report = await reportFromStore(join(deploymentsHome(), '..', 'reports', record.runId), 'demo', [
          record.runId,
        ]);
        out(`Drill report: ${report}`);
        drillVerdict = record.verdict;
        if (options.keep) {
          out(`Kept running: deployment ${id}; Web UI ${local.settings.uiUrl}`);
          return;
        }
        await down(client, id, { json: false, keepData: false });
        if (drillVerdict !== 'passed')
          throw new CliFailure(`the demo's drill ended ${drillVerdict}: see its report above`, 1);
        out(
          `Demo done in ${Math.round((Date.now() - started) / 1000)} s. History: ${workflowLink(local.settings, workflowIdOf(id))}`,
        );
      } finally {
        if (!options.keep) await local.stop();
      }
    });

  addDrillCommands(program);
  addFidelityCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return failureExit(error);
  }
}
