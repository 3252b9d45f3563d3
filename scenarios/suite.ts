/**
 * A suite file: which scenarios of the catalogue run, at which outage classes, on which topology.
 * Read by the CLI; the suite workflow gets the resolved list of drills.
 */
import { readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { issueLines, readYamlDocument } from '../deployment/topology/yaml-document.js';
import { catalogue, loadScenario, OUTAGE_CLASSES, ScenarioError, type Scenario } from './scenario.js';
import type { OutageClass } from './ttl-model.js';

const suiteSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'lowercase letters, digits and dashes' }),
  description: z.string().min(1),
  /** Relative to the project root. */
  topology: z.string().default('topologies/demo.yaml'),
  scenarios: z.union([z.literal('all'), z.array(z.string()).min(1)], {
    error: 'expected "all" or a list of scenario names',
  }),
  outages: z
    .array(z.enum(OUTAGE_CLASSES as [OutageClass, ...OutageClass[]], { error: 'short, medium or long' }))
    .min(1),
});

export interface ResolvedSuite {
  name: string;
  description: string;
  topologyPath: string;
  drills: { scenario: Scenario; outage: OutageClass }[];
}

export async function suiteNames(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** Loads a suite by name from `suitesDir` (or a path), with every scenario it names validated. */
export async function loadSuite(
  nameOrPath: string,
  dirs: { suites: string; catalogue: string; root: string },
): Promise<ResolvedSuite> {
  const path =
    nameOrPath.includes('/') || nameOrPath.endsWith('.yaml')
      ? nameOrPath
      : join(dirs.suites, `${nameOrPath}.yaml`);
  const knownSuites = await suiteNames(dirs.suites);
  const suiteError = (issues: string[]) => new ScenarioError(path, issues, 'suite');
  const document = await readYamlDocument(path, (issues) =>
    issues[0]?.startsWith('cannot read')
      ? suiteError([`no such suite: known are ${knownSuites.join(', ')}`])
      : suiteError(issues),
  );
  const parsed = suiteSchema.safeParse(document);
  if (!parsed.success) throw suiteError(issueLines(parsed.error));
  const suite = parsed.data;
  const names = suite.scenarios === 'all' ? [...(await catalogue(dirs.catalogue)).keys()] : suite.scenarios;
  const scenarios = await Promise.all(names.map((n) => loadScenario(n, dirs.catalogue)));
  return {
    name: suite.name,
    description: suite.description,
    topologyPath: isAbsolute(suite.topology) ? suite.topology : join(dirs.root, suite.topology),
    drills: scenarios.flatMap((scenario) => suite.outages.map((outage) => ({ scenario, outage }))),
  };
}
