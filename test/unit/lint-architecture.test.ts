import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/tools.js';

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

interface CruiseResult {
  modules: { source: string; dependencies: { resolved: string; couldNotResolve: boolean }[] }[];
  summary: { violations: Violation[] };
}

const tag = `planted-${randomBytes(4).toString('hex')}`;

/** Files written into the tree for the duration of the test: path from the repository root → content. */
const planted = {
  serverToCli: [`identity-core/server/${tag}-cli.ts`, "export { main } from '../cli/server-cli.js';\n"],
  serverAllowed: [`identity-core/server/${tag}-ok.ts`, "export { CaJournal } from '../pki/ca-journal.js';\n"],
  coreToDeployment: [
    `identity-core/agent/${tag}-up.ts`,
    "export type { Topology } from '../../deployment/topology/topology.js';\n",
  ],
  deploymentToScenarios: [
    `deployment/${tag}-up.ts`,
    "export type { DrillRecord } from '../scenarios/drill-record.js';\n",
  ],
  deploymentAllowed: [
    `deployment/${tag}-ok.ts`,
    "export { SpiffeId } from '../identity-core/spiffe/spiffe-id.js';\n",
  ],
  workflowValue: [
    `workflows/${tag}-value.ts`,
    "import { loadTopology } from '../deployment/topology/topology.js';\nexport const load = loadTopology;\n",
  ],
  workflowTypeOnly: [
    `workflows/${tag}-type.ts`,
    "import type { Topology } from '../deployment/topology/topology.js';\nexport type T = Topology;\n",
  ],
  cycleA: [
    `scenarios/${tag}-a.ts`,
    `import type { B } from './${tag}-b.js';\nexport interface A { b?: B }\n`,
  ],
  cycleB: [
    `scenarios/${tag}-b.ts`,
    `import type { A } from './${tag}-a.js';\nexport interface B { a?: A }\n`,
  ],
} as const;

const run = promisify(execFile);
const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);

/** A command's exit code and output, whether it failed or not. */
async function exitCodeAndOutput(command: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return run(command, args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code?: unknown; stdout?: string }) => {
      if (typeof error.code !== 'number') throw error;
      return { code: error.code, stdout: error.stdout ?? '' };
    },
  );
}

/**
 * dependency-cruiser with the project's config on just the planted files: the cruise as JSON (to see
 * what it resolved), then that same result in the lint's own format, whose exit code fails the lint.
 */
async function cruisePlanted(): Promise<{ result: CruiseResult; lint: { code: number; stdout: string } }> {
  const dir = await mkdtemp(join(tmpdir(), 'lint-architecture-'));
  try {
    const json = join(dir, 'cruise.json');
    const files = Object.values(planted).map(([path]) => path);
    await run(bin('depcruise'), ['--config', '.dependency-cruiser.mjs', '-T', 'json', '-f', json, ...files], {
      cwd: repoRoot,
    });
    const result = JSON.parse(await readFile(json, 'utf8')) as CruiseResult;
    return {
      result,
      lint: await exitCodeAndOutput(bin('depcruise-fmt'), ['-T', 'err', '--exit-code', json]),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('lint enforces the architecture (dependency-cruiser, .dependency-cruiser.mjs)', () => {
  let result: CruiseResult;
  let lint: { code: number; stdout: string };
  const violationsFrom = (key: keyof typeof planted) =>
    result.summary.violations.filter((v) => v.from === planted[key][0]);

  beforeAll(async () => {
    try {
      for (const [path, content] of Object.values(planted)) await writeFile(join(repoRoot, path), content);
      ({ result, lint } = await cruisePlanted());
    } finally {
      for (const [path] of Object.values(planted)) await rm(join(repoRoot, path), { force: true });
    }
  });

  it('fails the lint, naming each rule broken', () => {
    expect(lint.code).toBeGreaterThan(0);
    for (const rule of [
      'identity-core-runtime-not-cli',
      'identity-core-stands-alone',
      'deployment-not-above',
      'workflows-deterministic',
      'no-circular',
    ])
      expect(lint.stdout).toContain(`error ${rule}: `);
  });

  it('identity-core/server importing identity-core/cli', () => {
    expect(
      violationsFrom('serverToCli')
        .map((v) => [v.rule.name, v.to])
        .sort(),
    ).toEqual([
      ['identity-core-cli-only-from-bin-and-tests', 'identity-core/cli/server-cli.ts'],
      ['identity-core-runtime-not-cli', 'identity-core/cli/server-cli.ts'],
    ]);
  });

  it('identity-core importing anything above it, even a type', () => {
    expect(violationsFrom('coreToDeployment').map((v) => [v.rule.name, v.to])).toEqual([
      ['identity-core-stands-alone', 'deployment/topology/topology.ts'],
    ]);
  });

  it('deployment/ importing scenarios/, even for a type', () => {
    expect(violationsFrom('deploymentToScenarios').map((v) => [v.rule.name, v.to])).toEqual([
      ['deployment-not-above', 'scenarios/drill-record.ts'],
    ]);
  });

  it('a workflow importing a value from deployment/', () => {
    expect(violationsFrom('workflowValue').map((v) => [v.rule.name, v.to])).toEqual([
      ['workflows-deterministic', 'deployment/topology/topology.ts'],
    ]);
  });

  it('two modules importing each other, by types only', () => {
    const cycles = violationsFrom('cycleA').filter((v) => v.rule.name === 'no-circular');
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.to).toBe(planted.cycleB[0]);
  });

  it('lets allowed imports through, resolved', () => {
    for (const key of ['serverAllowed', 'deploymentAllowed', 'workflowTypeOnly'] as const) {
      expect(violationsFrom(key), key).toEqual([]);
      const module = result.modules.find((m) => m.source === planted[key][0]);
      expect(
        module?.dependencies.map((d) => [d.resolved, d.couldNotResolve]),
        key,
      ).toEqual([
        [
          {
            serverAllowed: 'identity-core/pki/ca-journal.ts',
            deploymentAllowed: 'identity-core/spiffe/spiffe-id.ts',
            workflowTypeOnly: 'deployment/topology/topology.ts',
          }[key],
          false,
        ],
      ]);
    }
  });
});
