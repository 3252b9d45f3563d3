import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../reports/html-report.js';
import { renderJsonReport } from '../../reports/json-report.js';
import { renderJunitReport } from '../../reports/junit-report.js';
import { writeJunitFile, writeReport } from '../../reports/write-report.js';
import { makeRunDir } from '../support/run-dir.js';
import { sampleSuite } from '../support/sample-suite.js';

describe('writeReport', () => {
  const run = makeRunDir('sd-report-');
  afterEach(() => run.remove());

  it('writes report.html, report.json and junit.xml into a folder it creates, and returns their paths', () => {
    const { suite, samples } = sampleSuite();
    const dir = join(run.dir, 'out', 'ci');
    const paths = writeReport(dir, suite, samples);
    expect(paths).toEqual({
      html: join(dir, 'report.html'),
      json: join(dir, 'report.json'),
      junit: join(dir, 'junit.xml'),
    });
    expect(readdirSync(dir).sort()).toEqual(['junit.xml', 'report.html', 'report.json']);
    expect(readFileSync(paths.html, 'utf8')).toBe(renderHtmlReport(suite, samples));
    expect(readFileSync(paths.json, 'utf8')).toBe(renderJsonReport(suite, samples));
    expect(readFileSync(paths.junit, 'utf8')).toBe(renderJunitReport(suite));
  });

  it('replaces an earlier report whole', () => {
    const { suite, samples } = sampleSuite();
    const dir = join(run.dir, 'again');
    writeReport(dir, suite, samples);
    const fewer = { ...suite, drills: suite.drills.slice(0, 1) };
    const paths = writeReport(dir, fewer, samples);
    expect(readFileSync(paths.junit, 'utf8')).toBe(renderJunitReport(fewer));
    expect(readdirSync(dir).sort()).toEqual(['junit.xml', 'report.html', 'report.json']);
  });

  it('writes the JUnit file alone where CI asks for it', () => {
    const { suite } = sampleSuite();
    const path = join(run.dir, 'ci', 'out.xml');
    expect(writeJunitFile(path, suite)).toBe(path);
    expect(readFileSync(path, 'utf8')).toBe(renderJunitReport(suite));
  });
});
