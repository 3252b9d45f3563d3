import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { connect, localTemporal } from '../cli/cli-support.js';
import { packageRoot } from '../deployment/host/package-root.js';
import { loadTopology } from '../deployment/topology/topology.js';
import type { DrillRecord } from '../scenarios/drill-record.js';
import { loadScenario } from '../scenarios/scenario.js';
import type { OutageClass } from '../scenarios/ttl-model.js';
import { TASK_QUEUE } from '../workflows/search-attributes.js';
import type { suiteWorkflow } from '../workflows/suite-workflow.js';
import { benchRunDir } from './bench-environment.js';

/**
 * What a drill costs beyond what its scenario needs: a suite of drills on one demo deployment (dev
 * server and worker in this process, embedded results store), and for each drill the time it
 * inherently needs — the steady-state window it had to wait for, the outage held, and the recovery
 * windows (heal → recovered → steady again). Prints one JSON line with
 * overhead_ratio = wall time of the drills / inherent time. Spin-up and teardown are not counted.
 * Args: SCENARIO:CLASS … (default lb-down:short agent-down:short upstream-outage:short lb-down:long).
 */
if (process.getuid?.() !== 0) {
  console.error('drill-overhead needs root: downstream servers run under their own group id');
  process.exit(2);
}

const picks = (
  process.argv.slice(2).length > 0
    ? process.argv.slice(2)
    : ['lb-down:short', 'agent-down:short', 'upstream-outage:short', 'lb-down:long']
).map((pick) => {
  const [scenario, outage] = pick.split(':');
  return { scenario: scenario!, outage: (outage ?? 'short') as OutageClass };
});

/** Seconds since the epoch of a history event. */
function eventSeconds(event: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number {
  const t = event.eventTime;
  return Number(t?.seconds ?? 0) + (t?.nanos ?? 0) / 1e9;
}

/**
 * Where a drill's wall time went, from its workflow history: seconds spent in each activity type
 * (scheduled → completed, summed over calls) and on durable timers.
 */
async function breakdown(client: Client, runId: string): Promise<Record<string, number>> {
  const history = await client.workflow.getHandle(`drill/${runId}`).fetchHistory();
  const scheduled = new Map<string, { type: string; at: number }>();
  const timers = new Map<string, number>();
  const spent: Record<string, number> = {};
  const add = (key: string, seconds: number) => (spent[key] = (spent[key] ?? 0) + seconds);
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    if (event.activityTaskScheduledEventAttributes)
      scheduled.set(id, {
        type: event.activityTaskScheduledEventAttributes.activityType?.name ?? '?',
        at: eventSeconds(event),
      });
    const closed =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    if (closed) {
      const from = scheduled.get(String(closed.scheduledEventId));
      if (from) add(from.type, eventSeconds(event) - from.at);
    }
    if (event.timerStartedEventAttributes) timers.set(id, eventSeconds(event));
    if (event.timerFiredEventAttributes) {
      const from = timers.get(String(event.timerFiredEventAttributes.startedEventId));
      if (from !== undefined) add('timers', eventSeconds(event) - from);
    }
  }
  return Object.fromEntries(Object.entries(spent).map(([k, v]) => [k, Math.round(v * 100) / 100]));
}

/** Seconds the scenario itself asks for: waited steady state, the held fault, recovery and steady again. */
function inherent(d: DrillRecord): number {
  const waitedSteady = d.steady ? Math.max(0, d.steady.end - Math.max(d.steady.start, d.startedAt)) : 0;
  const fault = d.fault ? d.fault.end - d.fault.start : 0;
  const recovery = d.recovery ? d.recovery.end - d.recovery.start : 0;
  return (waitedSteady + fault + recovery) / 1000;
}

const run = benchRunDir('sddo-');
process.env.SPIRE_DRILL_HOME = join(run.dir, 'deployments');
const local = await localTemporal({});
try {
  const client = await connect(local.settings);
  const catalogueDir = join(packageRoot(), 'scenarios', 'catalogue');
  const drills = await Promise.all(
    picks.map(async (p) => ({ scenario: await loadScenario(p.scenario, catalogueDir), outage: p.outage })),
  );
  const topology = await loadTopology(join(packageRoot(), 'topologies', 'demo.yaml'));
  const handle = await client.workflow.start<typeof suiteWorkflow>('suiteWorkflow', {
    taskQueue: TASK_QUEUE,
    workflowId: `suite/bench-${randomBytes(3).toString('hex')}`,
    args: [{ suite: 'bench', drills, topology }],
  });
  const suite = await handle.result();
  const wall = (suite.drills.at(-1)!.finishedAt - suite.drills[0]!.startedAt) / 1000;
  const needed = suite.drills.reduce((sum, d) => sum + inherent(d), 0);
  const spent = await Promise.all(suite.drills.map((d) => breakdown(client, d.runId)));
  console.log(
    JSON.stringify({
      bench: 'drill-overhead',
      drills: suite.drills.map((d) => `${d.scenario}:${d.outage}:${d.verdict}`),
      per_drill: suite.drills.map((d, i) => ({
        drill: `${d.scenario}:${d.outage}`,
        wall_s: Math.round((d.finishedAt - d.startedAt) / 100) / 10,
        inherent_s: Math.round(inherent(d) * 10) / 10,
        // Seconds since the previous drill finished: conclusion, child completion, next child start.
        ...(i > 0 ? { gap_before_s: (d.startedAt - suite.drills[i - 1]!.finishedAt) / 1000 } : {}),
        spent_s: spent[i],
      })),
      wall_s: Math.round(wall * 10) / 10,
      inherent_s: Math.round(needed * 10) / 10,
      overhead_ratio: Math.round((wall / needed) * 1000) / 1000,
    }),
  );
} finally {
  await local.stop();
  run.remove();
}
