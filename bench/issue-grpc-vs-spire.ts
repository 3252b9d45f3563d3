import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../deployment/host/package-root.js';
import { measureIssueRate } from './issue-rate.js';

/**
 * issue-grpc against tspire-server and, in the same run and under the same load, against the real
 * spire-server v1.13.3 (tools/bin) on the same PostgreSQL: one JSON line with both rates and
 * ratio_vs_spire (bundled / real). Real SPIRE runs with its defaults, signing rate limit included
 * (500 signatures per second per client IP, and every simulated agent is 127.0.0.1); the line says
 * whether that limit bound, and a third run against real SPIRE with its rate limits off gives
 * `ratio_vs_spire_unthrottled`.
 */
if (!existsSync(join(packageRoot(), 'tools', 'bin', 'spire-server'))) {
  console.error('real SPIRE is not built (tools/install.sh spire); no comparison');
  process.exit(1);
}
const ours = await measureIssueRate('tspire');
const theirs = await measureIssueRate('spire');
const unthrottled = await measureIssueRate('spire', { attestation: false, signing: false });
console.log(
  JSON.stringify({
    bench: 'issue-grpc-vs-spire',
    tspire_svids_per_s: ours.svids_per_s,
    spire_svids_per_s: theirs.svids_per_s,
    ratio_vs_spire: Number((ours.svids_per_s / theirs.svids_per_s).toFixed(2)),
    spire_unthrottled_svids_per_s: unthrottled.svids_per_s,
    ratio_vs_spire_unthrottled: Number((ours.svids_per_s / unthrottled.svids_per_s).toFixed(2)),
    tspire_failed: ours.failed,
    spire_failed: theirs.failed,
    spire_unthrottled_failed: unthrottled.failed,
    spire_signing_rate_limit_bound: theirs.svids_per_s >= 450,
    agents: ours.agents,
    entries_per_agent: ours.entries_per_agent,
    batch: ours.batch,
    seconds: ours.seconds,
    datastore: ours.datastore,
    cores: cpus().length,
  }),
);
