/**
 * `spire-drill fidelity run|list`: every drill of a suite on both implementations of one topology,
 * the whole suite on one and then on the other (each its own fresh deployment, torn down before the
 * next spins up: two at once would fight for ports and the two cores the timings depend on), stored
 * as one fidelity run linking both suite runs, and rendered side by side.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { loadTopology, type ImplementationName, type Topology } from '../deployment/topology/topology.js';
import { withResults } from '../results/results-store.js';
import type { FidelityRecord, FidelitySide } from '../scenarios/fidelity-record.js';
import { loadSuite, type ResolvedSuite } from '../scenarios/suite.js';
import { suiteRunIdOf } from '../workflows/suite-workflow.js';
import { CliFailure, out } from './cli-support.js';
import {
  badInput,
  EXIT,
  resultsStoreUsable,
  runSuite,
  scenarioDirs,
  withTemporal,
} from './drill-commands.js';
import { fidelityListTable } from './fidelity-list.js';
import { compareStored, fidelitySummary, writeFidelity } from './fidelity-report.js';
import { sideNames } from '../reports/fidelity-comparison.js';

const IMPLEMENTATIONS: ImplementationName[] = ['tspire', 'spire'];

/** `--implementations a,b`: two of tspire and spire, checked while the command line is parsed. */
export function implementationsArg(text: string): [ImplementationName, ImplementationName] {
  const names = text.split(',').map((n) => n.trim());
  const unknown = names.filter((n) => !(IMPLEMENTATIONS as string[]).includes(n));
  if (names.length !== 2 || unknown.length > 0)
    throw new CliFailure(
      `--implementations: expected two of ${IMPLEMENTATIONS.join(', ')} separated by a comma, e.g. tspire,spire (got ${text})`,
      2,
    );
  return names as [ImplementationName, ImplementationName];
}

/** `--report DIR` must be a directory or not exist yet: refused before an hour of drills, not after. */
function reportDirArg(dir: string): string {
  const path = resolve(dir);
  if (existsSync(path) && !statSync(path).isDirectory())
    throw new CliFailure(`--report: ${path} exists and is not a directory`, 2);
  return path;
}

interface RunOptions {
  topology?: string;
  implementations: [ImplementationName, ImplementationName];
  report?: string;
  failOnDifference?: boolean;
  json?: boolean;
}

/**
 * Runs the suite on one side. Its drills are linked as the results store has them (a drill whose
 * record could not be stored cannot be compared); a suite that does not complete is recorded with
 * the drills that ended.
 */
async function runSide(
  run: (workflowId: string) => Promise<{ stopped?: FidelitySide['stopped'] }>,
  implementation: ImplementationName,
  workflowId: string,
): Promise<FidelitySide> {
  const suiteRunId = suiteRunIdOf(workflowId);
  const stored = () => withResults((store) => store.suiteRuns(suiteRunId));
  try {
    const { stopped } = await run(workflowId);
    return { implementation, suiteRunId, runIds: await stored(), ...(stopped ? { stopped } : {}) };
  } catch (error) {
    if (!(error instanceof CliFailure)) throw error;
    return { implementation, suiteRunId, runIds: await stored(), error: error.message };
  }
}

export function addFidelityCommands(program: Command): void {
  const fidelity = program
    .command('fidelity')
    .description('the bundled SPIRE beside real SPIRE: each drill of a suite on both, side by side');

  fidelity
    .command('run')
    .argument('[suite]', 'suite name (scenarios/suites) or file', 'ci')
    .option('--topology <file>', "the topology both implementations run (default: the suite's, demo)")
    .addOption(
      new Option(
        '--implementations <a,b>',
        'the two implementations compared, in report order; tspire,tspire measures run-to-run noise',
      )
        .default(['tspire', 'spire'], 'tspire,spire')
        .argParser(implementationsArg),
    )
    .option('--report <dir>', 'write fidelity.html and fidelity.json there (default: ./<fidelity run id>)')
    .option('--fail-on-difference', 'exit 1 when any difference is flagged (default: a report, exit 0)')
    .option('--json', 'machine-readable output')
    .description(
      'run every drill of a suite on both implementations of one topology and report them side by side; exit 2 when a drill errored or a suite did not complete, 3 when stopped',
    )
    .action(async (suiteName: string, options: RunOptions) => {
      const resolved: ResolvedSuite = await badInput(loadSuite(suiteName, scenarioDirs()));
      const topologyPath = resolve(options.topology ?? resolved.topologyPath);
      const [first, second] = options.implementations;
      // Both overridden topologies validated before anything starts: a refused one changes nothing.
      const topologies: Topology[] = [
        await badInput(loadTopology(topologyPath, { implementation: first })),
        await badInput(loadTopology(topologyPath, { implementation: second })),
      ];
      const fidelityId = `fidelity-${resolved.name}-${randomBytes(3).toString('hex')}`;
      const reportDir = reportDirArg(options.report ?? fidelityId);
      await resultsStoreUsable();
      const json = options.json ?? false;
      const startedAt = Date.now();
      if (!json)
        out(
          `Fidelity run ${fidelityId}: suite ${resolved.name} (${resolved.drills.length} drills) on ${first}, then on ${second}, topology ${topologies[0]!.name}`,
        );
      const sides = await withTemporal(async (client, settings) => {
        const done: FidelitySide[] = [];
        for (const [i, implementation] of options.implementations.entries()) {
          const previous = done[i - 1];
          if (previous?.stopped) {
            done.push({
              implementation,
              runIds: [],
              stopped: {
                reason: `not started: ${previous.implementation} was stopped`,
                notRun: resolved.drills.length,
              },
            });
            continue;
          }
          if (!json) out(`\n${implementation}:`);
          done.push(
            await runSide(
              async (workflowId) => {
                const record = await runSuite(
                  client,
                  settings,
                  resolved,
                  { topology: topologies[i]! },
                  json,
                  workflowId,
                );
                return record.stopped ? { stopped: record.stopped } : {};
              },
              implementation,
              `suite/${fidelityId}-${i + 1}-${implementation}`,
            ),
          );
        }
        return done as [FidelitySide, FidelitySide];
      });
      const record: FidelityRecord = {
        fidelityId,
        suite: resolved.name,
        topology: topologyPath,
        topologyName: topologies[0]!.name,
        syncIntervalSeconds: topologies[0]!.syncInterval,
        startedAt,
        finishedAt: Date.now(),
        sides,
      };
      const results = await compareStored(record);
      const summary = fidelitySummary(results.comparison);
      await withResults((store) => store.saveFidelity(record, summary));
      const paths = writeFidelity(reportDir, results);
      const { comparison } = results;
      const names = sideNames(record);
      if (json)
        out(
          JSON.stringify({
            fidelityId,
            suite: resolved.name,
            sides,
            counts: summary,
            drills: comparison.drills.map((d) => ({
              scenario: d.scenario,
              outage: d.outage,
              verdicts: d.sides.map((side) => side?.verdict ?? null),
              differences: d.differences.map((x) => x.summary),
              notes: d.notes.map((x) => x.summary),
            })),
            report: paths,
          }),
        );
      else {
        out(
          `\nFidelity ${fidelityId}: ${names[0]} beside ${names[1]}, threshold one sync interval (${comparison.thresholdSeconds} s)`,
        );
        for (const d of comparison.drills) {
          const verdicts = d.sides.map((side, i) => `${names[i]} ${side?.verdict ?? 'not run'}`);
          out(
            `  ${`${d.scenario} ${d.outage}`.padEnd(24)} ${verdicts.join(', ').padEnd(36)} ${d.differences.length === 0 ? 'agree' : `${d.differences.length} differ`}`,
          );
          for (const x of d.differences) out(`      ${x.summary}`);
          for (const x of d.notes) out(`      note (not flagged): ${x.summary}`);
        }
        for (const side of sides) {
          if (side.error) out(`${side.implementation} did not complete: ${side.error}`);
          if (side.stopped) out(`${side.implementation} stopped: ${side.stopped.reason}`);
        }
        out(
          `${summary.drills} drills, ${summary.differences} differences flagged, ${summary.errored} errored`,
        );
        out(`Report: ${paths.html}`);
      }
      if (summary.errored > 0 || sides.some((side) => side.error)) throw new CliFailure('', EXIT.errored);
      if (sides.some((side) => side.stopped)) throw new CliFailure('', EXIT.aborted);
      if (options.failOnDifference && summary.differences > 0) throw new CliFailure('', EXIT.failed);
    });

  fidelity
    .command('list')
    .option('--limit <n>', 'at most this many runs', '50')
    .option('--json', 'machine-readable output')
    .description('fidelity runs in the results store, newest first')
    .action(async (options: { limit: string; json?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new CliFailure(`--limit: expected a positive whole number (got ${options.limit})`, 2);
      const rows = await withResults((store) => store.fidelityList(limit));
      if (options.json) out(JSON.stringify(rows));
      else if (rows.length === 0) out('No fidelity runs stored.');
      else for (const line of fidelityListTable(rows)) out(line);
    });
}
