import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keepLogs, keptLogsDir } from '../../deployment/stack/kept-logs.js';
import { makeRunDir } from '../support/run-dir.js';

const run = makeRunDir('sdkl-');
process.env.SPIRE_DRILL_HOME = join(run.dir, 'deployments');
afterAll(() => run.remove());

describe('logs kept when a drill does not pass', () => {
  it('copies every log of the run directory, nested as it was, outside the run directory that teardown removes', () => {
    const runDir = join(run.dir, 'deployments', 'demo-1');
    mkdirSync(join(runDir, 'upstream'), { recursive: true });
    mkdirSync(join(runDir, 'probes', '0'), { recursive: true });
    writeFileSync(join(runDir, 'upstream', 'tspire-agent.log'), 'sync failed\n');
    writeFileSync(join(runDir, 'probes', '0', 'probe.log'), 'handshake\n');
    writeFileSync(join(runDir, 'upstream', 'agent-state.json'), '{}');

    const kept = keepLogs(runDir, 'lb-down-short-1');
    expect(kept).toEqual({ dir: join(run.dir, 'deployments', '.drill-logs', 'lb-down-short-1'), files: 2 });
    expect(keptLogsDir('lb-down-short-1')).toBe(kept.dir);
    expect(readFileSync(join(kept.dir, 'upstream', 'tspire-agent.log'), 'utf8')).toBe('sync failed\n');
    expect(readFileSync(join(kept.dir, 'probes', '0', 'probe.log'), 'utf8')).toBe('handshake\n');
    expect(readdirSync(join(kept.dir, 'upstream'))).toEqual(['tspire-agent.log']);
  });

  it('keeps the last 2 MiB of a longer log, where the drill happened', () => {
    const runDir = join(run.dir, 'deployments', 'demo-2');
    mkdirSync(runDir, { recursive: true });
    const head = 'x'.repeat(1024 * 1024);
    const end = 'y'.repeat(2 * 1024 * 1024 - 4) + 'END\n';
    writeFileSync(join(runDir, 'server.log'), head + end);
    const kept = keepLogs(runDir, 'db-down-long-2');
    expect(readFileSync(join(kept.dir, 'server.log'), 'utf8')).toBe(end);
  });
});
