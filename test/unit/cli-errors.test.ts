import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { runCli as run } from '../support/cli-in-process.js';

/** What every refused command must look like: its exit code, one `spire-drill:` line, no stack. */
function expectOneLine(result: { code: number; stderr: string }, code: number, says: RegExp): void {
  const context = `exit ${result.code}, stderr:\n${result.stderr}`;
  expect(result.code, context).toBe(code);
  expect(result.stderr, context).not.toMatch(/^\s+at /m);
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('warning:'));
  expect(lines, context).toHaveLength(1);
  expect(lines[0], context).toMatch(/^spire-drill: /);
  expect(lines[0], context).toMatch(says);
}

describe('the spire-drill CLI on bad input and failures', () => {
  const home = mkdtempSync(join(tmpdir(), 'cli-errors-'));
  const saved = { ...process.env };
  let closedPort: number;

  beforeAll(async () => {
    // Nothing listens on a port just handed out and released: no Temporal is reachable there.
    closedPort = await freePort();
    process.env.TEMPORAL_ADDRESS = `127.0.0.1:${closedPort}`;
    process.env.SPIRE_DRILL_HOME = join(home, 'deployments');
    delete process.env.SPIRE_DRILL_RESULTS_URL;
  });
  afterAll(() => {
    process.env = saved;
    rmSync(home, { recursive: true, force: true });
  });

  it.each([
    [['nosuch'], /unknown command 'nosuch'/],
    [['status'], /missing required argument 'id'/],
    [['rotate', 'x', '--bogus'], /unknown option '--bogus'/],
    [['dev', '--port', '0'], /invalid port 0/],
    [['up', '--topology', '/nonexistent/topology.yaml'], /topology\.yaml/],
    [['up', '--id', 'Not An Id'], /Not An Id/],
    [['drill', 'run', 'lb-down'], /required option '--outage <class>' not specified/],
    [
      ['drill', 'run', 'lb-down', '--outage', 'huge'],
      /^spire-drill: --outage: expected short, medium or long \(got huge\)$/,
    ],
    [
      ['drill', 'plan', 'lb-down', '--outage', 'huge'],
      /--outage: expected short, medium or long \(got huge\)/,
    ],
    [['drill', 'run', 'no-such-scenario', '--outage', 'short'], /no-such-scenario/],
    [['drill', 'run', 'lb-down', '--outage', 'short', '--deployment', 'a', '--topology', 'b'], /not both/],
    [
      ['drill', 'plan', 'lb-down', '--outage', 'short', '--topology', '/nonexistent.yaml'],
      /nonexistent\.yaml/,
    ],
    [['drill', 'abort'], /missing required argument 'run'/],
    [['suite', 'run', 'no-such-suite'], /no-such-suite/],
    [['suite', 'schedule', 'smoke', '--cron', 'often'], /is not a cron expression/],
    [['suite', 'schedule', 'smoke'], /required option '--cron <expr>' not specified/],
    [['fidelity', 'run', 'no-such-suite'], /no-such-suite.*no such suite: known are ci, full, smoke/],
    [['fidelity', 'run', 'smoke', '--topology', '/nonexistent.yaml'], /nonexistent\.yaml/],
    [
      ['fidelity', 'run', 'smoke', '--implementations', 'tspire'],
      /^spire-drill: --implementations: expected two of tspire, spire separated by a comma, e\.g\. tspire,spire \(got tspire\)$/,
    ],
    [
      ['fidelity', 'run', 'smoke', '--implementations', 'tspire,kube'],
      /--implementations: .*\(got tspire,kube\)/,
    ],
    [
      ['fidelity', 'run', 'smoke', '--implementations', 'tspire,tspire', '--report', process.execPath],
      /--report: .* exists and is not a directory/,
    ],
    [['fidelity', 'run', 'smoke', '--bogus'], /unknown option '--bogus'/],
    [['fidelity', 'list', '--limit', '0'], /--limit: expected a positive whole number \(got 0\)/],
  ])('refuses %j with exit 2 and one line', async (args, says) => {
    expectOneLine(await run(args), 2, says);
  });

  it.each([
    [['status', 'x']],
    [['list']],
    [['rotate', 'x']],
    [['down', 'x']],
    [['up', '--id', 'x']],
    [['drill', 'abort', 'x']],
  ])('says %j cannot reach Temporal, exit 1 and one line', async (args) => {
    expectOneLine(await run(args), 1, new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${closedPort}`));
  });
});
