import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  ScheduleOverlapPolicy,
  WorkflowUpdateStage,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { Command, Option } from 'commander';
import { Deployment } from '../deployment/deployment.js';
import { FaultRefused } from '../deployment/faults/fault.js';
import { resolveFault } from '../deployment/faults/fault-lifecycle.js';
import { packageRoot } from '../deployment/host/package-root.js';
import { loadTopology, TopologyError, type Topology } from '../deployment/topology/topology.js';
import { renderCompareReport, type ComparedRun } from '../reports/compare-report.js';
import { runMetrics, type RunMetrics } from '../reports/measurements.js';
import { renderTrendReport } from '../reports/trend-report.js';
import { writeHtmlPage, writeJunitFile, writeReport } from '../reports/write-report.js';
import { checkResultsStore, withResults } from '../results/results-store.js';
import type { DrillRecord, SuiteRecord, Verdict } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import {
  classOf,
  drillPolicy,
  outageSeconds,
  planWorkloads,
  predictUnknownHeld,
} from '../scenarios/drill-plan.js';
import { loadScenario, OUTAGE_CLASSES, ScenarioError, type Scenario } from '../scenarios/scenario.js';
import { loadSuite, type ResolvedSuite } from '../scenarios/suite.js';
import type { OutageClass } from '../scenarios/ttl-model.js';
import { temporalSettings, workflowLink, type TemporalSettings } from '../workers/temporal-settings.js';
import { drillUpdate, type deploymentWorkflow } from '../workflows/deployment-workflow.js';
import { abortDrillSignal, drillStatusQuery, type drillWorkflow } from '../workflows/drill-workflow.js';
import { failureMessage } from '../workflows/failure-message.js';
import {
  DeploymentId,
  DeploymentStatus,
  OutageClass as OutageAttr,
  Scenario as ScenarioAttr,
  TASK_QUEUE,
} from '../workflows/search-attributes.js';
import {
  stopSuiteSignal,
  suiteStatusQuery,
  type SuiteStatusView,
  type suiteWorkflow,
} from '../workflows/suite-workflow.js';
import { CliFailure, connect, invalidFile, localTemporal, notFoundAsBadInput, out } from './cli-support.js';
import { drillListTable, parseSince } from './drill-list.js';
import { compareStored, fidelitySummary, storedFidelity, writeFidelity } from './fidelity-report.js';
import { stopOnInterrupt } from './interrupts.js';
import { plannedTarget } from './plan-targets.js';
import { plural } from '../scenarios/plural.js';
import { drillProgress, progressLine } from './progress-lines.js';

export const EXIT: Record<Verdict, number> = { passed: 0, failed: 1, errored: 2, aborted: 3 };

export const scenarioDirs = () => ({
  catalogue: join(packageRoot(), 'scenarios', 'catalogue'),
  suites: join(packageRoot(), 'scenarios', 'suites'),
  root: packageRoot(),
});

const demoTopology = () => join(packageRoot(), 'topologies', 'demo.yaml');
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function badInput<T>(work: Promise<T>): Promise<T> {
  return work.catch((error: unknown) => {
    if (error instanceof ScenarioError || error instanceof TopologyError) throw invalidFile(error);
    throw error;
  });
}

/** `--outage`, checked while the command line is parsed, before anything loads or starts. */
function outageClassArg(text: string): OutageClass {
  if (!(OUTAGE_CLASSES as string[]).includes(text))
    throw new CliFailure(
      `--outage: expected ${OUTAGE_CLASSES.join(', ').replace(/, (\w+)$/, ' or $1')} (got ${text})`,
      2,
    );
  return text as OutageClass;
}

/** Runs `fn` against TEMPORAL_ADDRESS, or a dev server and an in-process worker started for it. */
export async function withTemporal<T>(
  fn: (client: Client, settings: TemporalSettings) => Promise<T>,
): Promise<T> {
  const settings = temporalSettings();
  if (settings.external) return fn(await connect(settings), settings);
  const local = await localTemporal({});
  try {
    return await fn(await connect(local.settings), local.settings);
  } finally {
    await local.stop();
  }
}

/** Prints a drill's steps as they appear, indented, until it completes. */
async function followDrill(
  client: Client,
  runId: string,
  json: boolean,
  indent = '  ',
): Promise<DrillRecord> {
  const handle: WorkflowHandle<typeof drillWorkflow> = client.workflow.getHandle(`drill/${runId}`);
  // A drill started by the deployment workflow's update exists a moment after the update is accepted.
  for (
    let tries = 0;
    !(await handle.describe().then(
      () => true,
      () => false,
    ));
    tries++
  ) {
    if (tries >= 60) throw new CliFailure(`drill ${runId} did not start within 30 s`, 2);
    await new Promise((r) => setTimeout(r, 500));
  }
  let shown = 0;
  const done = handle.result();
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  for (;;) {
    // Read once more after the end, so that the last steps are shown too.
    const ended = finished;
    const status = await handle.query(drillStatusQuery).catch(() => undefined);
    if (status && json) drillProgress(status, shown);
    else if (status) for (const line of status.steps.slice(shown)) out(`${indent}▸ ${line}`);
    if (status) shown = status.steps.length;
    if (ended) return done;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Starts one drill on a running deployment and follows it to its verdict; an interrupt aborts it. */
export async function drillOnDeployment(
  client: Client,
  settings: TemporalSettings,
  deploymentId: string,
  scenario: Scenario,
  outageClass: OutageClass,
  json: boolean,
): Promise<DrillRecord> {
  const runId = `${scenario.name}-${outageClass}-${randomBytes(3).toString('hex')}`;
  // A deployment whose lifecycle workflow runs gets the drill as that workflow's child, so the Web
  // UI shows it under the deployment and rotations and teardown wait for it; others run it alone.
  const lifecycle = client.workflow.getHandle<typeof deploymentWorkflow>(`deployment/${deploymentId}`);
  const described = await lifecycle.describe().catch(() => undefined);
  const running = described?.status.name === 'RUNNING';
  // Refused here, before a drill workflow exists, so that a mistyped id leaves no run behind.
  if (!running && !Deployment.list().includes(deploymentId)) {
    const phase = described?.typedSearchAttributes.get(DeploymentStatus);
    throw new CliFailure(
      described
        ? `deployment ${deploymentId} is ${phase ?? described.status.name.toLowerCase()}: a drill needs a running one`
        : `no deployment ${deploymentId}: \`spire-drill list\` shows the deployments`,
      2,
    );
  }
  if (running) {
    await lifecycle
      .startUpdate(drillUpdate, {
        args: [{ runId, scenario, outage: outageClass }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      })
      .catch((error: Error) => {
        throw new CliFailure(`deployment ${deploymentId} refused the drill: ${failureMessage(error)}`, 2);
      });
    if (!json)
      out(
        `Drill ${runId}, a child of deployment/${deploymentId}. Web UI: ${workflowLink(settings, `drill/${runId}`)}`,
      );
    return followAbortable(client, runId, json);
  }
  await client.workflow.start('drillWorkflow', {
    taskQueue: TASK_QUEUE,
    workflowId: `drill/${runId}`,
    args: [{ runId, deploymentId, scenario, outage: outageClass }],
    staticSummary: `${scenario.name} (${outageClass}) on ${deploymentId}`,
    staticDetails: scenario.description,
    typedSearchAttributes: [
      { key: DeploymentId, value: deploymentId },
      { key: ScenarioAttr, value: scenario.name },
      { key: OutageAttr, value: outageClass },
    ],
  });
  if (!json) out(`Drill ${runId}. Web UI: ${workflowLink(settings, `drill/${runId}`)}`);
  return followAbortable(client, runId, json);
}

async function followAbortable(client: Client, runId: string, json: boolean): Promise<DrillRecord> {
  const release = stopOnInterrupt(`drill ${runId}`, () =>
    client.workflow
      .getHandle(`drill/${runId}`)
      .signal(abortDrillSignal, { reason: 'interrupted from the command line' }),
  );
  try {
    return await followDrill(client, runId, json);
  } finally {
    release();
  }
}

export function printDrill(record: DrillRecord): void {
  // Predictions are judged over the fault as held, which a slow heal (a restore) makes longer than planned.
  const held = record.fault ? `, held ${s(record.fault.end - record.fault.start)}` : '';
  out(
    `\n${record.scenario} (${record.outage}, ${record.outageSeconds} s planned${held}): ${record.verdict.toUpperCase()} — ${record.reason}`,
  );
  for (const w of record.workloads) {
    const lost = w.observed.gaps.map(
      (g) => `${s(g.end - g.start)} from +${s(g.start - (record.fault?.start ?? record.startedAt))}`,
    );
    out(
      `  ${w.spiffeId.padEnd(56)} predicted ${w.predicted.loss.padEnd(8)} observed ${lost.length === 0 ? 'no loss' : lost.join(', ')}  handshakes ${w.observed.handshakes.ok}/${w.observed.handshakes.ok + w.observed.handshakes.failed}`,
    );
  }
  for (const e of record.expectations) {
    out(`  ${e.met ? '✓' : '✗'} ${e.name}`);
    if (!e.met) for (const line of e.evidence) out(`      ${line}`);
  }
  for (const f of record.findings) out(`  ! ${f}`);
}

function drillJson(record: DrillRecord, report?: string) {
  return {
    runId: record.runId,
    verdict: record.verdict,
    reason: record.reason,
    scenario: record.scenario,
    outage: record.outage,
    outageSeconds: record.outageSeconds,
    deploymentId: record.deploymentId,
    workloads: record.workloads.map((w) => ({
      spiffeId: w.spiffeId,
      group: w.group,
      predicted: w.predicted,
      observed: {
        lostIdentity: w.observed.gaps.length > 0,
        gaps: w.observed.gaps,
        handshakes: w.observed.handshakes,
        jwt: w.observed.jwt,
      },
    })),
    expectations: record.expectations,
    injections: record.injections,
    findings: record.findings,
    ...(report ? { report } : {}),
  };
}

/** Writes trend.html: every stored run of `scenario` (at `outage`, when given) over time. */
async function trendFromStore(dir: string, scenario: string, outage?: OutageClass): Promise<string> {
  const metrics = await withResults(async (store) => {
    const found: RunMetrics[] = [];
    for (const runId of await store.runsOf(scenario, outage)) {
      const run = await store.drill(runId);
      if (run) found.push(runMetrics(run.record, run.samples));
    }
    return found;
  });
  if (metrics.length === 0)
    throw new CliFailure(
      `no stored run of ${scenario}${outage ? ` at ${outage}` : ''} in the results store (see \`spire-drill drill list\`)`,
      2,
    );
  return writeHtmlPage(resolve(dir), 'trend.html', renderTrendReport(scenario, outage, metrics));
}

/** Writes compare.html: two stored runs of one scenario side by side, the earlier one first. */
async function compareFromStore(dir: string, runIds: string[]): Promise<string> {
  if (runIds.length !== 2) throw new CliFailure(`--compare takes two run ids, not ${runIds.length}`, 2);
  const runs = await withResults(async (store) => {
    const found: ComparedRun[] = [];
    for (const runId of runIds) {
      const run = await store.drill(runId);
      if (!run) throw new CliFailure(`no drill run "${runId}" in the results store`, 2);
      found.push({ drill: run.record, samples: run.samples });
    }
    return found;
  });
  const [a, b] = runs.sort((x, y) => x.drill.startedAt - y.drill.startedAt) as [ComparedRun, ComparedRun];
  if (a.drill.scenario !== b.drill.scenario)
    throw new CliFailure(
      `--compare needs two runs of one scenario: ${a.drill.runId} is ${a.drill.scenario}, ${b.drill.runId} is ${b.drill.scenario}`,
      2,
    );
  return writeHtmlPage(resolve(dir), 'compare.html', renderCompareReport(a, b));
}

/** Writes the HTML, JSON and JUnit report of finished drills from the results store. */
export async function reportFromStore(dir: string, suite: string, runIds: string[]): Promise<string> {
  const { drills, samples } = await withResults(async (store) => {
    const drills: DrillRecord[] = [];
    const samples: Record<string, ProbeSample[]> = {};
    for (const runId of runIds) {
      const found = await store.drill(runId);
      if (!found) throw new CliFailure(`no drill run "${runId}" in the results store`);
      drills.push(found.record);
      samples[runId] = found.samples;
    }
    return { drills, samples };
  });
  const record: SuiteRecord = {
    suite,
    startedAt: Math.min(...drills.map((d) => d.startedAt)),
    finishedAt: Math.max(...drills.map((d) => d.finishedAt)),
    drills,
  };
  const paths = writeReport(resolve(dir), record, samples);
  return paths.html;
}

/**
 * Starts a suite workflow (a fresh deployment when no id), follows it, returns its record.
 * `workflowId` names it when the caller must find its drills again (a fidelity run).
 */
export async function runSuite(
  client: Client,
  settings: TemporalSettings,
  suite: { name: string; drills: { scenario: Scenario; outage: OutageClass }[] },
  target: { deploymentId?: string; topology?: Topology },
  json: boolean,
  workflowId = `suite/${suite.name}-${randomBytes(3).toString('hex')}`,
): Promise<SuiteRecord> {
  const handle: WorkflowHandle<typeof suiteWorkflow> = await client.workflow.start('suiteWorkflow', {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ suite: suite.name, drills: suite.drills, ...target }],
    staticSummary: `Suite ${suite.name}: ${plural(suite.drills.length, 'drill')}`,
    ...(target.deploymentId
      ? { typedSearchAttributes: [{ key: DeploymentId, value: target.deploymentId }] }
      : {}),
  });
  if (!json)
    out(
      `Suite ${suite.name}: ${plural(suite.drills.length, 'drill')}. Web UI: ${workflowLink(settings, workflowId)}`,
    );
  let shown = 0;
  const followed = new Set<string>();
  const result = handle.result();
  let finished = false;
  void result.finally(() => (finished = true)).catch(() => undefined);
  const release = stopOnInterrupt(
    suite.drills.length === 1 ? `drill ${suite.drills[0]!.scenario.name}` : `suite ${workflowId}`,
    () => handle.signal(stopSuiteSignal, { reason: 'interrupted from the command line' }),
  );
  let last: SuiteStatusView | undefined;
  try {
    for (;;) {
      const status = await handle.query(suiteStatusQuery).catch(() => undefined);
      if (status) {
        last = status;
        if (json)
          for (const step of status.steps.slice(shown))
            progressLine({ at: Date.now(), suite: workflowId, phase: 'suite', step });
        else for (const line of status.steps.slice(shown)) out(`▸ ${line}`);
        shown = status.steps.length;
        if (status.currentRunId && !followed.has(status.currentRunId)) {
          followed.add(status.currentRunId);
          await followDrill(client, status.currentRunId, json, '    ').catch(() => undefined);
          continue;
        }
      }
      if (finished) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    release();
  }
  return result.catch((error: Error) => {
    const cause = failureMessage(error);
    const ended = (last?.done ?? []).map((d) => `${d.scenario} ${d.outage}: ${d.verdict}`);
    throw new CliFailure(
      `suite ${suite.name} did not complete: ${cause}; ${ended.length} of ${plural(suite.drills.length, 'drill')} ended${ended.length > 0 ? ` (${ended.join(', ')})` : ''}`,
      2,
    );
  });
}

/** Exit 2 with the reason when the results store cannot take a verdict, before anything starts. */
export async function resultsStoreUsable(): Promise<void> {
  await checkResultsStore().catch((error: Error) => {
    throw new CliFailure(error.message, 2);
  });
}

async function resolveTarget(options: { deployment?: string; topology?: string }) {
  if (options.deployment && options.topology)
    throw new CliFailure('give --deployment or --topology, not both', 2);
  if (options.deployment) return { deploymentId: options.deployment };
  return { topology: await badInput(loadTopology(options.topology ?? demoTopology())) };
}

export function addDrillCommands(program: Command): void {
  const json = new Option('--json', 'machine-readable output');
  const outage = new Option('--outage <class>', 'outage class: short, medium or long')
    .makeOptionMandatory()
    .argParser(outageClassArg);
  const drill = program.command('drill').description('failure drills: plan, run, abort, list');

  drill
    .command('plan')
    .argument('<scenario>', 'catalogue name or scenario file')
    .addOption(outage)
    .option('--topology <file>', 'topology YAML', demoTopology())
    .addOption(json)
    .description('dry run: validate the scenario, resolve its targets, print the predicted timeline')
    .action(async (name: string, options: { outage: OutageClass; topology: string; json?: boolean }) => {
      const scenario = await badInput(loadScenario(name, scenarioDirs().catalogue));
      const outageClass = options.outage;
      const topology = await badInput(loadTopology(options.topology));
      const preview = Deployment.preview(topology);
      let reach;
      try {
        reach = resolveFault(preview, scenario.fault);
      } catch (error) {
        if (error instanceof FaultRefused)
          throw new CliFailure(`${scenario.name} cannot run here: ${error.message}`, 2);
        throw error;
      }
      // Downstream intermediates are not known before spin-up: the plan assumes they outlive the drill.
      const planned = planWorkloads(preview.workloadIdentities(), scenario.fault, reach);
      const targets = reach.targets.map(plannedTarget);
      const policy = drillPolicy(topology);
      const seconds = outageSeconds(scenario, outageClass, policy);
      const window = { start: 0, end: seconds * 1000 };
      const workloads = planned.map((w) => ({ ...w, predicted: predictUnknownHeld(w, window, policy) }));
      const plan = {
        scenario: scenario.name,
        topology: resolve(options.topology),
        outage: outageClass,
        outageSeconds: seconds,
        lengthClass: classOf(seconds, policy),
        targets,
        steadySeconds: scenario.steady,
        expectations: scenario.expectations.map((e) => e.expect),
        workloads,
      };
      if (options.json) {
        out(JSON.stringify(plan));
        return;
      }
      out(`${scenario.name} at ${outageClass}: ${scenario.description}`);
      out(`  topology: ${plan.topology}`);
      out(`  targets: ${targets.join(', ')}`);
      out(
        `  timeline: ${scenario.fault.kind === 'db-restore' ? `backup, ${plural(scenario.fault.registerAfterBackup, 'identity', 'identities')} registered after it → ` : ''}steady ${scenario.steady} s → ${scenario.fault.kind === 'db-restore' ? `loss once the backup is ${scenario.fault.backupAge} s old` : 'inject'} → hold ${seconds} s (${plan.lengthClass}; SVID lifetime ${policy.x509Ttl + policy.backdate} s) → heal → recover → steady ${scenario.steady} s`,
      );
      for (const w of workloads) {
        const p = w.predicted;
        out(
          `  ${w.spiffeId.padEnd(56)} ${p.loss === 'never' ? 'keeps its identity' : `${p.loss} loses it from +${s(p.lossAt!)}, back by +${s(p.recoveredBy!.latest)}`}`,
        );
      }
      out(`  expectations: ${plan.expectations.join(', ')}`);
    });

  drill
    .command('run')
    .argument('<scenario>', 'catalogue name or scenario file')
    .addOption(outage)
    .option('--deployment <id>', 'run on this running deployment')
    .option(
      '--topology <file>',
      'spin up a fresh deployment of this topology (default topologies/demo.yaml) and tear it down after',
    )
    .option('--report <dir>', 'write report.html, report.json and junit.xml there')
    .addOption(json)
    .description('run one drill; exit 0 passed, 1 failed, 2 errored, 3 aborted')
    .action(
      async (
        name: string,
        options: {
          outage: OutageClass;
          deployment?: string;
          topology?: string;
          report?: string;
          json?: boolean;
        },
      ) => {
        const scenario = await badInput(loadScenario(name, scenarioDirs().catalogue));
        const outageClass = options.outage;
        const target = await resolveTarget(options);
        await resultsStoreUsable();
        const record = await withTemporal(async (client, settings) => {
          if (target.deploymentId)
            return drillOnDeployment(
              client,
              settings,
              target.deploymentId,
              scenario,
              outageClass,
              options.json ?? false,
            );
          const suite = await runSuite(
            client,
            settings,
            { name: scenario.name, drills: [{ scenario, outage: outageClass }] },
            target,
            options.json ?? false,
          );
          if (!suite.drills[0])
            throw new CliFailure(`stopped before the drill began: ${suite.stopped?.reason}`, EXIT.aborted);
          return suite.drills[0];
        });
        const report = options.report
          ? await reportFromStore(options.report, record.scenario, [record.runId])
          : undefined;
        if (options.json) out(JSON.stringify(drillJson(record, report)));
        else {
          printDrill(record);
          if (report) out(`Report: ${report}`);
        }
        if (record.verdict !== 'passed') throw new CliFailure('', EXIT[record.verdict]);
      },
    );

  drill
    .command('abort')
    .argument('<run>', 'drill run id')
    .option('--reason <text>', 'why, for the record', 'aborted by an operator')
    .description('abort a running drill: it heals at once and ends with verdict aborted')
    .action(async (runId: string, options: { reason: string }) => {
      const client = await connect(temporalSettings());
      await client.workflow
        .getHandle(`drill/${runId}`)
        .signal(abortDrillSignal, { reason: options.reason })
        .catch(notFoundAsBadInput(`running drill ${runId}`));
      out(`Abort sent to drill ${runId}.`);
    });

  drill
    .command('list')
    .option('--scenario <name>', 'only runs of this scenario')
    .addOption(
      new Option('--verdict <verdict>', 'only runs with this verdict').choices([
        'passed',
        'failed',
        'errored',
        'aborted',
      ]),
    )
    .option('--since <when>', 'only runs started since: a duration back (7d, 36h) or an ISO date')
    .option('--limit <n>', 'at most this many runs', '50')
    .addOption(json)
    .description('drill runs in the results store, newest first')
    .action(
      async (options: {
        scenario?: string;
        verdict?: string;
        since?: string;
        limit: string;
        json?: boolean;
      }) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new CliFailure(`--limit: expected a positive whole number (got ${options.limit})`, 2);
        const filter = {
          limit,
          ...(options.scenario ? { scenario: options.scenario } : {}),
          ...(options.verdict ? { verdict: options.verdict } : {}),
          ...(options.since ? { since: parseSince(options.since) } : {}),
        };
        const rows = await withResults((store) => store.list(filter));
        if (options.json) out(JSON.stringify(rows));
        else if (rows.length === 0) out('No drill runs match.');
        else for (const line of drillListTable(rows)) out(line);
      },
    );

  program
    .command('report')
    .argument('[run]', 'a drill run id, a suite run id, or a fidelity run id')
    .option('--out <dir>', 'where to write the report files', '.')
    .option('--trend <scenario>', 'every stored run of a scenario over time: trend.html')
    .option('--outage <class>', 'with --trend: only runs at this outage class', outageClassArg)
    .option('--compare <runs...>', 'two drill runs of one scenario side by side: compare.html')
    .description(
      'render the reports of a stored drill, suite or fidelity run (fidelity.html, fidelity.json), a trend, or a comparison',
    )
    .action(
      async (
        run: string | undefined,
        options: { out: string; trend?: string; outage?: OutageClass; compare?: string[] },
      ) => {
        const modes = [run !== undefined, options.trend !== undefined, options.compare !== undefined];
        if (modes.filter(Boolean).length !== 1)
          throw new CliFailure('give one of: a run id, --trend <scenario> or --compare <run-a> <run-b>', 2);
        if (options.outage !== undefined && options.trend === undefined)
          throw new CliFailure('--outage goes with --trend', 2);
        if (options.trend !== undefined)
          out(await trendFromStore(options.out, options.trend, options.outage));
        else if (options.compare !== undefined) out(await compareFromStore(options.out, options.compare));
        else {
          const single = await withResults((store) => store.drill(run!));
          const runIds = single ? [run!] : await withResults((store) => store.suiteRuns(run!));
          if (runIds.length > 0) {
            out(await reportFromStore(options.out, run!, runIds));
            return;
          }
          const fidelity = await storedFidelity(run!);
          if (!fidelity)
            throw new CliFailure(`no drill, suite or fidelity run "${run}" in the results store`, 2);
          const results = await compareStored(fidelity);
          // The comparison is made afresh, so the counts `fidelity list` shows follow it.
          await withResults((store) => store.saveFidelity(fidelity, fidelitySummary(results.comparison)));
          out(writeFidelity(options.out, results).html);
        }
      },
    );

  const suite = program.command('suite').description('suites of drills: run, schedule');
  suite
    .command('run')
    .argument('<name>', 'suite name (scenarios/suites) or file')
    .option('--junit <file>', 'write the JUnit XML there')
    .option('--report <dir>', 'write report.html, report.json and junit.xml there')
    .option('--deployment <id>', 'run on this running deployment')
    .option('--topology <file>', "spin up this topology instead of the suite's")
    .addOption(json)
    .description('run every drill of a suite; exit 0 only if every verdict passed')
    .action(
      async (
        name: string,
        options: { junit?: string; report?: string; deployment?: string; topology?: string; json?: boolean },
      ) => {
        const resolved: ResolvedSuite = await badInput(loadSuite(name, scenarioDirs()));
        const target = await resolveTarget({
          ...options,
          ...(options.deployment ? {} : { topology: options.topology ?? resolved.topologyPath }),
        });
        await resultsStoreUsable();
        const started = Date.now();
        const record = await withTemporal((client, settings) =>
          runSuite(client, settings, resolved, target, options.json ?? false),
        );
        const runIds = record.drills.map((d) => d.runId);
        let html: string | undefined;
        if (options.report && runIds.length > 0)
          html = await reportFromStore(options.report, resolved.name, runIds);
        if (options.junit) writeJunitFile(resolve(options.junit), record);
        const counts = (v: Verdict) => record.drills.filter((d) => d.verdict === v).length;
        if (options.json)
          out(
            JSON.stringify({
              suite: resolved.name,
              drills: record.drills.map((d) => drillJson(d)),
              report: html,
              ...(record.stopped ? { stopped: record.stopped } : {}),
            }),
          );
        else {
          for (const d of record.drills) printDrill(d);
          out(
            `\nSuite ${resolved.name}: ${counts('passed')} passed, ${counts('failed')} failed, ${counts('errored')} errored, ${counts('aborted')} aborted in ${Math.round((Date.now() - started) / 1000)} s`,
          );
          if (record.stopped)
            out(`Stopped: ${record.stopped.reason}; ${plural(record.stopped.notRun, 'drill')} did not run`);
          if (html) out(`Report: ${html}`);
        }
        const worst = record.drills
          .map((d) => EXIT[d.verdict])
          .reduce((a, b) => Math.max(a, b), record.stopped ? EXIT.aborted : 0);
        if (worst !== 0) throw new CliFailure('', worst);
      },
    );

  suite
    .command('schedule')
    .argument('<name>', 'suite name or file')
    .requiredOption('--cron <expr>', 'cron expression, e.g. "0 3 * * *"')
    .option('--topology <file>', "spin up this topology instead of the suite's")
    .description('create (or replace) a Temporal Schedule that runs the suite on a fresh deployment')
    .action(async (name: string, options: { cron: string; topology?: string }) => {
      const resolved = await badInput(loadSuite(name, scenarioDirs()));
      if (!/^(\S+\s+){4}\S+$/.test(options.cron.trim()) && !options.cron.startsWith('@'))
        throw new CliFailure(
          `--cron "${options.cron}" is not a cron expression (five fields, e.g. "0 3 * * *")`,
          2,
        );
      const topology = await badInput(loadTopology(options.topology ?? resolved.topologyPath));
      const client = await connect(temporalSettings());
      const scheduleId = `suite-${resolved.name}`;
      await client.schedule
        .getHandle(scheduleId)
        .delete()
        .catch(() => undefined);
      await client.schedule
        .create({
          scheduleId,
          spec: { cronExpressions: [options.cron] },
          policies: { overlap: ScheduleOverlapPolicy.SKIP },
          action: {
            type: 'startWorkflow',
            workflowType: 'suiteWorkflow',
            taskQueue: TASK_QUEUE,
            workflowId: `suite/${resolved.name}-scheduled`,
            args: [{ suite: resolved.name, drills: resolved.drills, topology }],
          },
        })
        .catch((error: Error) => {
          throw new CliFailure(`the schedule was refused: ${error.message}`, 2);
        });
      out(
        `Schedule ${scheduleId}: suite ${resolved.name} at "${options.cron}" (skips a run while one is going).`,
      );
    });
}
