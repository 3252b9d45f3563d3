import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/tools.js';

/**
 * `tspire-server … | head -1`: the reader closes the pipe before the command has written all it
 * has. The executables must stop quietly then, not die on an unhandled EPIPE with a stack trace.
 */
const built = existsSync(join(repoRoot, 'dist', 'identity-core', 'cli', 'server-cli.js'));
if (!built) console.warn('dist/ is not built (npm run build); skipping the closed-stdout tests');

function runWithClosedStdout(bin: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', bin), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Closed before the first write, as a `head` that has already exited leaves it.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe.skipIf(!built)('a closed stdout', () => {
  it.each(['tspire-server.js', 'tspire-agent.js'])('%s exits 0 without an EPIPE trace', async (bin) => {
    const { code, stderr } = await runWithClosedStdout(bin, ['--help']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
