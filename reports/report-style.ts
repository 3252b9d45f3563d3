/**
 * The HTML report's stylesheet, inlined into the page so the file stands alone. System fonts (DejaVu
 * on a bare Debian), one neutral palette, colour kept for verdicts and for what went wrong; the layout
 * is sized for a 1200 px window and narrows gracefully.
 */
export const REPORT_STYLE = `
:root {
  color-scheme: light;
  --ink: #24292f;
  --muted: #57606a;
  --line: #d8dee4;
  --page: #f3f5f7;
  --card: #ffffff;
  --head: #f6f8fa;
  --passed: #1a7f37;
  --failed: #cf222e;
  --errored: #9a6700;
  --aborted: #6e7781;
}
* { box-sizing: border-box; }
body {
  margin: 0;
  background: var(--page);
  color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
}
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 18px; margin: 0; font-weight: 650; display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
h3 { font-size: 13px; margin: 22px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
a { color: #0a58ca; text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 12px; }
.meta { color: var(--muted); font-size: 13px; margin: 2px 0; }
.counts { display: flex; gap: 8px; margin: 10px 0 4px; flex-wrap: wrap; }
.verdict {
  display: inline-block; padding: 1px 10px; border-radius: 999px; color: #fff;
  font-size: 12px; font-weight: 650; letter-spacing: 0.04em; text-transform: uppercase;
}
.verdict.passed { background: var(--passed); }
.verdict.failed { background: var(--failed); }
.verdict.errored { background: var(--errored); }
.verdict.aborted { background: var(--aborted); }
.outage-class { color: var(--muted); font-weight: 400; font-size: 15px; }
section.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 18px 22px 20px; margin: 20px 0;
}
section.drill { border-left: 5px solid var(--aborted); }
section.drill.passed { border-left-color: var(--passed); }
section.drill.failed { border-left-color: var(--failed); }
section.drill.errored { border-left-color: var(--errored); }
.reason { margin: 8px 0 2px; font-size: 15px; }
.reason.failed { color: var(--failed); }
.reason.errored { color: var(--errored); }
.description { margin: 2px 0 6px; }
figure.timeline-figure { margin: 16px 0 4px; }
svg.timeline { display: block; width: 100%; height: auto; }
ul.legend {
  list-style: none; margin: 10px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 18px;
  color: var(--muted); font-size: 12px;
}
ul.legend li { display: flex; align-items: center; gap: 6px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); }
th { background: var(--head); color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.bad { color: var(--failed); font-weight: 600; }
.met { color: var(--passed); font-weight: 650; white-space: nowrap; }
.missed { color: var(--failed); font-weight: 650; white-space: nowrap; }
ul.evidence, ul.findings { margin: 0; padding-left: 18px; }
.none { color: var(--muted); margin: 0; }
tr.flagged td { background: #fff1f0; }
.agree { color: var(--passed); font-weight: 600; }
span.bad { color: var(--failed); }
ul.sides, ul.differences, ul.notes { margin: 6px 0; padding-left: 18px; }
details.run { margin-top: 12px; }
details.run > summary { cursor: pointer; color: var(--muted); }
`;
