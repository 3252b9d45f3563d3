import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../deployment/host/package-root.js';
import type { ImplementationName } from '../deployment/implementation/implementation.js';
import { NestedTree } from '../deployment/stack/identity-tree.js';
import { verifyingRoots } from '../deployment/probes/workload-fetch.js';
import { parsePemCertificates, splitDerCertificates } from '../identity-core/spiffe/pem.js';
import type { X509SVIDResponse__Output } from '../identity-core/proto/gen/X509SVIDResponse.js';
import { WorkloadClient, workloadMetadata } from '../identity-core/proto/services.js';
import * as grpc from '@grpc/grpc-js';
import { benchDatabase, benchRunDir } from './bench-environment.js';

/**
 * How fast a forced rotation on the root reaches every workload of a root → 2 intermediates → 2
 * leaves tree (one workload under every agent, six in all): seconds from `taint` of the old root until
 * every workload holds an SVID that chains to the new root only, and from `revoke` until every bundle
 * (five servers, six workloads' views) holds one authority. Then the same tree of real spire-server
 * and spire-agent v1.13.3 (tools/bin); one JSON line with both, real SPIRE's as `*_vs_spire` ratios
 * (bundled / real) and `spire_*` seconds.
 * Env: SYNC_INTERVAL_S (agents' sync interval, default 5, SPIRE's), X509_SVID_TTL (default 1h, so
 * nothing renews for its own reasons during the measurement).
 */
const SYNC_INTERVAL_S = Number(process.env.SYNC_INTERVAL_S ?? 5);
const X509_SVID_TTL = process.env.X509_SVID_TTL ?? '1h';
const POLL_MS = 200;
const TIMEOUT_MS = 180_000;

if (process.getuid?.() !== 0) {
  console.error('rotation-propagation needs root: downstream servers run under their own group id');
  process.exit(2);
}

interface View {
  chain: Buffer[];
  bundle: Buffer[];
}

function fetchView(socket: string): Promise<View> {
  const client = new WorkloadClient(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise<View>((resolve, reject) => {
    const stream = client.FetchX509SVID({}, workloadMetadata());
    stream.once('data', (response: X509SVIDResponse__Output) => {
      stream.cancel();
      const svid = response.svids[0];
      if (!svid) reject(new Error('no SVID'));
      else
        resolve({
          chain: splitDerCertificates(Buffer.from(svid.x509Svid)),
          bundle: splitDerCertificates(Buffer.from(svid.bundle)),
        });
    });
    stream.once('error', reject);
  }).finally(() => client.close());
}

function chainsTo(view: View, rootId: string): boolean {
  return verifyingRoots(view).includes(rootId);
}

/** Seconds until `check` holds, polling every POLL_MS. */
async function secondsUntil(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < TIMEOUT_MS) {
    if (await check().catch(() => false)) return Math.round((performance.now() - started) / 10) / 100;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`${what} did not happen within ${TIMEOUT_MS / 1000} s`);
}

async function measure(implementation: ImplementationName) {
  const run = benchRunDir('sdrp-');
  const drops: (() => Promise<void>)[] = [];
  let tree: NestedTree | undefined;
  try {
    tree = await NestedTree.start({
      implementation,
      runDir: run.dir,
      database: async (name) => {
        const database = await benchDatabase(`sd_bench_rp_${name}`);
        drops.push(database.drop);
        return database.choice;
      },
      x509SvidTtl: X509_SVID_TTL,
      syncInterval: `${SYNC_INTERVAL_S}s`,
      workloadGid: process.getgid!(),
    });
    const { root, workloads, stacks } = tree;
    const cli = async (args: string[]) => {
      const result = await root.serverCli(args);
      if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    const views = () => Promise.all(workloads.map((w) => fetchView(w.socket)));
    const serverBundleSizes = () =>
      Promise.all(
        Object.values(stacks).map(async (stack) => {
          const shown = await stack.serverCli(['bundle', 'show', '-format', 'pem']);
          return parsePemCertificates(shown.stdout).length;
        }),
      );
    const everyBundleHolds = async (count: number) =>
      (await serverBundleSizes()).every((n) => n === count) &&
      (await views()).every((v) => v.bundle.length === count);

    await secondsUntil('every workload served', async () => (await views()).length === workloads.length);
    const oldRoot = /Active X\.509 authority:\s+Authority ID: (\S+)/.exec(
      await cli(['localauthority', 'x509', 'show']),
    )![1]!;
    const newRoot = /Authority ID: (\S+)/.exec(await cli(['localauthority', 'x509', 'prepare']))![1]!;
    const prepareToAllBundles = await secondsUntil('the prepared root in every bundle', () =>
      everyBundleHolds(2),
    );
    await cli(['localauthority', 'x509', 'activate', '-authorityID', newRoot]);

    await cli(['localauthority', 'x509', 'taint', '-authorityID', oldRoot]);
    const taintToAllRotated = await secondsUntil('every workload under the new root', async () =>
      (await views()).every((v) => chainsTo(v, newRoot) && !chainsTo(v, oldRoot)),
    );
    await cli(['localauthority', 'x509', 'revoke', '-authorityID', oldRoot]);
    const revokeToSingle = await secondsUntil('one authority in every bundle', () => everyBundleHolds(1));

    return {
      bench: 'rotation-propagation',
      tree: 'root → 2 intermediates → 2 leaves',
      servers: Object.keys(stacks).length,
      workloads: workloads.length,
      sync_interval_s: SYNC_INTERVAL_S,
      upstream_bundle_poll_s: 5,
      prepare_to_all_bundles_s: prepareToAllBundles,
      taint_to_all_rotated_s: taintToAllRotated,
      revoke_to_single_authority_s: revokeToSingle,
    };
  } finally {
    await tree?.stop();
    for (const drop of drops) await drop();
    run.remove();
  }
}

const ours = await measure('tspire');
if (!existsSync(join(packageRoot(), 'tools', 'bin', 'spire-server'))) {
  console.error('real SPIRE is not built (tools/install.sh spire): the bundled SPIRE alone');
  console.log(JSON.stringify(ours));
} else {
  const theirs = await measure('spire');
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  console.log(
    JSON.stringify({
      ...ours,
      spire_prepare_to_all_bundles_s: theirs.prepare_to_all_bundles_s,
      spire_taint_to_all_rotated_s: theirs.taint_to_all_rotated_s,
      spire_revoke_to_single_authority_s: theirs.revoke_to_single_authority_s,
      prepare_to_all_bundles_s_vs_spire: ratio(
        ours.prepare_to_all_bundles_s,
        theirs.prepare_to_all_bundles_s,
      ),
      taint_to_all_rotated_s_vs_spire: ratio(ours.taint_to_all_rotated_s, theirs.taint_to_all_rotated_s),
      revoke_to_single_authority_s_vs_spire: ratio(
        ours.revoke_to_single_authority_s,
        theirs.revoke_to_single_authority_s,
      ),
    }),
  );
}
