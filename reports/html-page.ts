/**
 * The frame every HTML page of the reports shares: a self-contained document (inline CSS, no script,
 * a Content-Security-Policy that loads nothing) and the verdict badge.
 */
import type { Verdict } from '../scenarios/drill-record.js';
import { REPORT_STYLE } from './report-style.js';
import { escapeText as text } from './xml-escape.js';

export function badge(verdict: Verdict, label: string = verdict): string {
  return `<span class="verdict ${verdict}">${text(label)}</span>`;
}

export function page(title: string, body: string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Says, and makes the browser enforce, that the page loads nothing from anywhere.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${text(title)}</title>`,
    `<style>${REPORT_STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
