/**
 * Writes a suite's three reports side by side: report.html for people, report.json for machines,
 * junit.xml for CI. Each file is written whole under a temporary name and renamed into place, so a
 * reader never sees half a report.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SuiteRecord } from '../scenarios/drill-record.js';
import type { ProbeSample } from '../deployment/probes/probe-sample.js';
import type { FidelityComparison, StoredRun } from './fidelity-comparison.js';
import { renderFidelityHtml } from './fidelity-html.js';
import { renderFidelityJson } from './fidelity-json.js';
import { renderHtmlReport } from './html-report.js';
import { renderJsonReport } from './json-report.js';
import { renderJunitReport } from './junit-report.js';

export interface ReportPaths {
  html: string;
  json: string;
  junit: string;
}

function writeWhole(path: string, content: string): void {
  const partial = `${path}.partial`;
  writeFileSync(partial, content);
  renameSync(partial, path);
}

/** Writes one HTML page (a trend or a comparison) as `dir/name`, creating `dir`; returns its path. */
export function writeHtmlPage(dir: string, name: string, html: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeWhole(path, html);
  return path;
}

/** Writes the JUnit report alone at `path` (a CI's `--junit FILE`), creating its folder; returns the path. */
export function writeJunitFile(path: string, suite: SuiteRecord): string {
  mkdirSync(dirname(path), { recursive: true });
  writeWhole(path, renderJunitReport(suite));
  return path;
}

/** Renders the reports into `dir` (created if missing) and returns their paths. `samples` are keyed by run id. */
export function writeReport(
  dir: string,
  suite: SuiteRecord,
  samples: Record<string, ProbeSample[]>,
): ReportPaths {
  mkdirSync(dir, { recursive: true });
  const paths = {
    html: join(dir, 'report.html'),
    json: join(dir, 'report.json'),
    junit: join(dir, 'junit.xml'),
  };
  writeWhole(paths.html, renderHtmlReport(suite, samples));
  writeWhole(paths.json, renderJsonReport(suite, samples));
  writeWhole(paths.junit, renderJunitReport(suite));
  return paths;
}

/** Writes fidelity.html and fidelity.json into `dir` (created if missing); returns their paths. */
export function writeFidelityReport(
  dir: string,
  comparison: FidelityComparison,
  runs: StoredRun[],
): { html: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { html: join(dir, 'fidelity.html'), json: join(dir, 'fidelity.json') };
  writeWhole(paths.html, renderFidelityHtml(comparison, runs));
  writeWhole(paths.json, renderFidelityJson(comparison));
  return paths;
}
