import { join } from 'node:path';
import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { deploymentActivities } from '../activities/deployment-activities.js';
import { drillActivities } from '../activities/drill-activities.js';
import { packageRoot } from '../deployment/host/package-root.js';
import { TASK_QUEUE } from '../workflows/search-attributes.js';
import { killSwitchInterceptors } from './kill-switch-interceptor.js';
import { workerLogLine } from './worker-log-line.js';

/** The compiled workflows (npm run build), also when this module itself runs from source under vitest. */
function compiledWorkflows(): string {
  return join(packageRoot(), 'dist', 'workflows', 'index.js');
}

let runtimeInstalled = false;

/** The SDK's own logs at WARN: the CLI prints progress itself. Installed once, before any worker. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new (class {
      log() {}
      trace() {}
      debug() {}
      info() {}
      warn(message: string, meta?: Record<string, unknown>) {
        process.stderr.write(`${workerLogLine(message, meta)}\n`);
      }
      error(message: string, meta?: Record<string, unknown>) {
        process.stderr.write(`${workerLogLine(message, meta)}\n`);
      }
    })(),
    // Forwarded: Core otherwise prints its own warnings (e.g. a slow workflow task on a busy machine)
    // straight to stdout, into a `--json` result.
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
    // Each command decides what a signal means: a CLI following a drill aborts it first, so it heals.
    shutdownSignals: [],
  });
}

/** A worker for the project's workflows and activities on `taskQueue`. */
export async function createWorker(options: {
  address: string;
  namespace: string;
  taskQueue?: string;
  /** A pre-bundled workflow file (tests bundle once); otherwise the workflows are bundled now. */
  workflowBundlePath?: string;
}): Promise<{ worker: Worker; connection: NativeConnection }> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    activities: { ...deploymentActivities, ...drillActivities },
    // A test hook, empty unless SPIRE_DRILL_TEST_KILL_AT is set.
    interceptors: { activity: killSwitchInterceptors() },
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath: compiledWorkflows() }),
  });
  return { worker, connection };
}
