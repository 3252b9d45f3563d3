import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JsonReport } from '../../reports/json-report.js';
import { checkCatalogueRun, checkJunit, checkLbDownLongLoss } from '../support/suite-checks.js';

/**
 * The `ci` suite's own checks, on what `.ci/run` left of `spire-drill suite run ci --junit … --report …`
 * (every scenario at short and long): the CLI's exit code already failed CI on a bad verdict; these
 * check that the drills measured what they claim. `CI_SUITE_OUT` names the directory holding
 * `ci.xml` and `report/`; .ci/run sets it.
 */
const out = process.env.CI_SUITE_OUT;
if (!out) console.warn('skipping: CI_SUITE_OUT is not set; .ci/run runs this after `suite run ci`');

describe.skipIf(!out)('the ci suite run by .ci/run', () => {
  it('ran every scenario at short and long, all passed, with the evidence', () => {
    const report = JSON.parse(readFileSync(join(out!, 'report', 'report.json'), 'utf8')) as JsonReport;
    const drills = report.suite.drills;
    checkCatalogueRun(drills, ['short', 'long']);
    checkLbDownLongLoss(drills);
    expect((report.suite.finishedAt - report.suite.startedAt) / 60_000).toBeLessThan(20);
    checkJunit(join(out!, 'ci.xml'), drills.length);
    expect(existsSync(join(out!, 'report', 'report.html'))).toBe(true);
    expect(readFileSync(join(out!, 'report', 'report.html'), 'utf8')).toContain('lb-down');
  });
});
