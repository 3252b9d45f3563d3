/**
 * db-restore: the datastore lost and restored from a backup taken `backupAge` seconds before the
 * loss; `registerAfterBackup` workloads of the group get one more identity between backup and loss,
 * which the restore must take away again. What the backup lacked is inventoried on both sides (live
 * just before the loss, restored just after), and agents the restored datastore no longer recognises
 * are found and re-attested.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import {
  describeInventoryDiff,
  diffInventory,
  readInventory,
  type DatastoreInventory,
} from '../postgres/datastore-inventory.js';
import type { Deployment } from '../deployment.js';
import type { SpireImplementation } from '../implementation/implementation.js';
import { durationSeconds } from '../topology/duration-schema.js';
import { sleep } from '../host/poll.js';
import { loseDatastore, restoreBackup, takeBackup } from '../postgres/postgres-backup.js';
import { datastoreHealthy, restoreGroupsOnPostgres } from './datastore-outage.js';
import { defineFault, FaultRefused } from './fault.js';
import { databasesOnPostgres, groupName, groupShape, groupsOnPostgres } from './fault-group.js';

const restoreSpec = z.strictObject({
  kind: z.literal('db-restore'),
  group: groupName,
  backupAge: durationSeconds,
  registerAfterBackup: z
    .number({ error: 'expected how many workloads get an identity after the backup' })
    .int({ error: 'expected a whole number of workloads' })
    .min(0, { error: 'cannot be negative' })
    .default(1),
});
type RestoreSpec = z.output<typeof restoreSpec>;

/** Where run `runId`'s backup and inventories live: beside the data directory, reachable by its user. */
export function restoreDir(deployment: Deployment, runId: string): string {
  return join(dirname(deployment.postgres()!.dataDir), 'backups', runId);
}

/** The identity each of the first `count` workloads of the group is given after the backup. */
export function registeredAfterBackup(
  deployment: Deployment,
  spec: RestoreSpec,
): { spiffeId: string; parentId: string; workload: string; selectors: string[] }[] {
  return deployment
    .workloadIdentities()
    .filter((slot) => slot.group === spec.group)
    .slice(0, spec.registerAfterBackup)
    .map((slot) => ({
      spiffeId: `${slot.spiffeId}/after-backup`,
      parentId: deployment.agentNodeId(slot.group, slot.agent),
      workload: slot.spiffeId,
      // The workload's own selectors: it is handed the late identity besides its own.
      selectors: slot.selectors,
    }));
}

const writeJson = (file: string, value: unknown) => {
  writeFileSync(`${file}.tmp`, JSON.stringify(value));
  renameSync(`${file}.tmp`, file);
};
const readJson = <T>(file: string): T | undefined =>
  existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;

/** Beyond the backup's age, what a drill spends before the loss: steady state, and slack. */
const RESTORE_MARGIN_S = 20;

/**
 * Waits until no agent is due to renew its SVID within `horizonMs`. An agent that renews between
 * the backup and the loss is refused by the restored datastore and must be re-attested, which
 * delays its workloads beyond what the TTL model predicts for an outage: the catalogue's drill
 * stays deterministic by taking its backup clear of renewals (the faults test forces that case).
 * Agents renew when 45–55 % of their SVID's lifetime remains.
 */
async function clearOfAgentRenewals(deployment: Deployment, horizonMs: number): Promise<void> {
  for (;;) {
    const now = Date.now();
    let until = 0;
    for (const slot of await agentSlots(deployment)) {
      const leaf = (await deployment.implementationOf(slot.group).storedAgentIdentity(slot.dataDir))
        ?.chain[0];
      if (leaf === undefined) continue;
      const cert = new X509Certificate(leaf);
      const notBefore = Date.parse(cert.validFrom);
      const lifetime = Date.parse(cert.validTo) - notBefore;
      const windowStart = notBefore + 0.45 * lifetime;
      const windowEnd = notBefore + 0.55 * lifetime;
      if (windowStart < now + horizonMs && windowEnd > now) until = Math.max(until, windowEnd + 3000);
    }
    if (until === 0) return;
    await sleep(Math.min(until - now, 5000));
  }
}

/**
 * Before the steady state: the backup (idempotent: one per run), then the identities registered after
 * it. Returns when the backup was taken, so the drill can wait until it is `backupAge` old.
 */
export async function prepareRestore(
  deployment: Deployment,
  runId: string,
  spec: RestoreSpec,
): Promise<{ takenAt: number; bytes: number; registered: string[] }> {
  const dir = restoreDir(deployment, runId);
  if (!existsSync(join(dir, 'backup', 'backup.json')))
    await clearOfAgentRenewals(deployment, (spec.backupAge + RESTORE_MARGIN_S) * 1000);
  const backup = await takeBackup(deployment.postgres()!, join(dir, 'backup'));
  const stack = await deployment.stack(spec.group);
  const registered: string[] = [];
  for (const late of registeredAfterBackup(deployment, spec)) {
    await stack.admin().ensureEntry({
      parentId: late.parentId,
      spiffeId: late.spiffeId,
      selectors: late.selectors,
    });
    registered.push(late.spiffeId);
  }
  return { takenAt: backup.takenAt, bytes: backup.bytes, registered };
}

async function inventories(deployment: Deployment): Promise<Record<string, DatastoreInventory>> {
  const found: Record<string, DatastoreInventory> = {};
  for (const { group, url } of databasesOnPostgres(deployment))
    found[group] = await readInventory(url, deployment.implementationOf(group).name);
  return found;
}

/**
 * The loss: the live inventory first (kept from the first attempt, so a retry after the loss does
 * not read an empty datastore), then the primary crashed and its data deleted, and the replica too.
 */
async function loseForRestore(deployment: Deployment, runId: string): Promise<string> {
  const dir = restoreDir(deployment, runId);
  const liveFile = join(dir, 'live.json');
  if (!existsSync(liveFile)) {
    mkdirSync(dir, { recursive: true });
    writeJson(liveFile, await inventories(deployment));
  }
  const replica = deployment.replica();
  if (replica) await replica.stop('immediate');
  await loseDatastore(deployment.postgres()!);
  return `PostgreSQL on 127.0.0.1:${deployment.postgres()!.port} crashed and its data deleted${replica ? ', and its replica stopped' : ''}`;
}

/** Whether the datastore is gone: no postmaster, no data directory. */
function datastoreLost(deployment: Deployment): { lost: boolean; detail: string } {
  const postgres = deployment.postgres()!;
  const pid = postgres.pid();
  if (pid !== undefined) return { lost: false, detail: `PostgreSQL still runs (pid ${pid})` };
  if (existsSync(join(postgres.dataDir, 'PG_VERSION')))
    return { lost: false, detail: `PostgreSQL's data directory ${postgres.dataDir} is still there` };
  return { lost: true, detail: `PostgreSQL is down and ${postgres.dataDir} is gone` };
}

/** An agent of the deployment and the SVID it holds on disk. */
interface AgentSlot {
  what: string;
  /** The server group it is an agent of, whose implementation it runs. */
  group: string;
  dataDir: string;
  /** Stops it; started again by the group's restore (ensureAgent / ensureDownstream). */
  stop(): Promise<void>;
}

async function agentSlots(deployment: Deployment): Promise<AgentSlot[]> {
  const { upstream, downstreams } = await deployment.identityStacks();
  // A new Deployment object holds no process handles yet: find the running agents to stop them.
  for (const stack of [upstream, ...Object.values(downstreams)]) stack.adoptRunning();
  const slots: AgentSlot[] = upstream.agentSockets.map((_, i) => ({
    what: `upstream agent-${i}`,
    group: 'upstream',
    dataDir: upstream.agentDataDir(i),
    stop: async () => void (await upstream.agents[i]?.stop()),
  }));
  for (const [name, stack] of Object.entries(downstreams)) {
    stack.agentSockets.forEach((_, i) =>
      slots.push({
        what: `${name} agent-${i}`,
        group: name,
        dataDir: stack.agentDataDir(i),
        stop: async () => void (await stack.agents[i]?.stop()),
      }),
    );
    // The downstream servers' own agent is an agent of the upstream.
    slots.push({
      what: `${name}'s upstream agent`,
      group: 'upstream',
      dataDir: stack.upstreamAgentDataDir(),
      stop: async () => void (await stack.upstreamAgent?.stop()),
    });
  }
  return slots;
}

/**
 * The SPIFFE ID and serial (decimal) of the SVID the agent with this data directory holds on disk,
 * read by its implementation.
 */
export async function heldSvid(
  implementation: SpireImplementation,
  dataDir: string,
): Promise<{ spiffeId: string; serial: string } | undefined> {
  const leaf = (await implementation.storedAgentIdentity(dataDir))?.chain[0];
  if (leaf === undefined) return undefined;
  const cert = new X509Certificate(leaf);
  const uri = /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
  return uri ? { spiffeId: uri, serial: BigInt(`0x${cert.serialNumber}`).toString(10) } : undefined;
}

/**
 * Heals a restore: the backup back in place and started, the replica made again from it, the
 * restored inventory written, and every agent whose SVID the restored datastore does not know
 * (attested or renewed after the backup) re-attested: the server would refuse it, as SPIRE does.
 * `restored` is called once the restored primary answers. Returns what it did; the groups' servers and agents are brought back by the caller.
 */
async function restoreFromBackup(
  deployment: Deployment,
  runId: string,
  restored: () => void,
): Promise<string[]> {
  const dir = restoreDir(deployment, runId);
  const postgres = deployment.postgres()!;
  const done: string[] = [];
  await restoreBackup(postgres, join(dir, 'backup'));
  restored();
  const replica = deployment.replica();
  const restoredFile = join(dir, 'restored.json');
  // A standby of the lost primary cannot follow the restored one, whose history parts from its own
  // after the backup: it starts over from it before anything waits for it to catch up.
  // The inventory is written once the replica has been made again: a later heal leaves it be.
  if (replica && !existsSync(restoredFile)) await replica.recreate();
  await deployment.ensureDatastore();
  done.push(`PostgreSQL restored from the backup${replica ? ', replica made again from it' : ''}`);
  // The datastore as it is now: right after the restore that is the backup's content; on a later
  // heal it also knows the agents re-attested since, which must not be re-attested again.
  const inventory = await inventories(deployment);
  if (!existsSync(restoredFile)) writeJson(restoredFile, inventory);
  const known = new Map(
    Object.values(inventory).flatMap((inventory) => inventory.agents.map((a) => [a.spiffeId, a] as const)),
  );
  for (const slot of await agentSlots(deployment)) {
    const implementation = deployment.implementationOf(slot.group);
    const held = await heldSvid(implementation, slot.dataDir);
    if (!held) continue;
    const node = known.get(held.spiffeId);
    if (node && (node.serial === held.serial || node.newSerial === held.serial)) continue;
    await slot.stop();
    await implementation.forgetAgentIdentity(slot.dataDir);
    const line = `${slot.what} (${held.spiffeId}) re-attested with a new join token: the restored datastore ${node ? `knows serial ${node.serial}, not its ${held.serial}` : 'has no such agent'}, so the server would refuse it`;
    done.push(line);
    writeJson(join(dir, 'reattested.json'), [
      ...(readJson<string[]>(join(dir, 'reattested.json')) ?? []),
      line,
    ]);
  }
  return done;
}

/** What the backup lacked, per group, as report lines; empty before the restore has been inventoried. */
export function restoreFindings(deployment: Deployment, runId: string): string[] {
  const dir = restoreDir(deployment, runId);
  const live = readJson<Record<string, DatastoreInventory>>(join(dir, 'live.json'));
  const restored = readJson<Record<string, DatastoreInventory>>(join(dir, 'restored.json'));
  if (!live || !restored) return [];
  const backup = readJson<{ takenAt: number }>(join(dir, 'backup', 'backup.json'));
  const lines: string[] = [];
  for (const [group, inventory] of Object.entries(live)) {
    const before = restored[group];
    if (!before) {
      lines.push(`${group}: the restored datastore has no database for this group`);
      continue;
    }
    const age = backup
      ? ` (taken ${((inventory.takenAt - backup.takenAt) / 1000).toFixed(1)} s before the loss)`
      : '';
    const diff = describeInventoryDiff(diffInventory(inventory, before));
    lines.push(
      diff.length === 0
        ? `${group}: the backup${age} had everything the datastore held at the loss`
        : `${group}: the backup${age} lacked what follows`,
      ...diff.map((line) => `${group}: ${line}`),
    );
  }
  const reattested = readJson<string[]>(join(dir, 'reattested.json')) ?? [];
  lines.push(
    ...(reattested.length > 0
      ? reattested
      : ['every agent presented an SVID the restored datastore knows: none had to re-attest']),
  );
  return lines;
}

/**
 * A restore drill that ended before the loss leaves no trace: the identities it registered after
 * the backup are deleted again. Returns those it deleted; nothing once the loss has happened (the
 * restore drops them) or when this run took no backup.
 */
export async function withdrawLaterRegistrations(
  deployment: Deployment,
  runId: string,
  spec: RestoreSpec,
): Promise<string[]> {
  const dir = restoreDir(deployment, runId);
  if (!existsSync(join(dir, 'backup')) || existsSync(join(dir, 'live.json'))) return [];
  const stack = await deployment.stack(spec.group);
  const withdrawn: string[] = [];
  for (const late of registeredAfterBackup(deployment, spec)) {
    for (const entry of await stack.admin().findEntries(late.spiffeId)) {
      await stack.admin().deleteEntry(entry.id);
      withdrawn.push(late.spiffeId);
    }
  }
  return withdrawn;
}

/** Removes run `runId`'s backup and inventories once the drill is over. */
export function removeRestoreFiles(deployment: Deployment, runId: string): void {
  if (deployment.postgres()) rmSync(restoreDir(deployment, runId), { recursive: true, force: true });
}

export const dbRestore = defineFault({
  kind: 'db-restore',
  spec: restoreSpec,
  describe: (spec) => `db-restore (${spec.group}, backup ${spec.backupAge} s old)`,
  resolve(deployment, spec) {
    const g = groupShape(deployment, spec.group);
    const groups = groupsOnPostgres(deployment);
    if (!groups.includes(g.name))
      throw new FaultRefused(
        "db-restore loses the deployment's own PostgreSQL and restores a backup of it, which needs upstream.datastore: managed",
      );
    if (spec.registerAfterBackup > deployment.workloadIdentities().filter((w) => w.group === g.name).length)
      throw new FaultRefused(
        `registerAfterBackup is ${spec.registerAfterBackup}, more than ${g.name}'s workloads`,
      );
    return {
      targets: [
        `PostgreSQL 127.0.0.1:${deployment.plan.postgres!.port} (the datastore of ${groups.join(', ')}), lost and restored from a backup ${spec.backupAge} s old`,
      ],
      effect: 'issuance',
      groups,
    };
  },
  inject: (deployment, _spec, run) => loseForRestore(deployment, run.runId),
  async confirm(deployment, _spec, seen) {
    const { lost, detail } = datastoreLost(deployment);
    seen.note(lost, detail);
    await seen.portDown('PostgreSQL', deployment.postgres()!.port);
  },
  async heal(deployment, _spec, run) {
    const done = await restoreFromBackup(deployment, run.runId, run.restored);
    const groups = await restoreGroupsOnPostgres(deployment);
    return `${done.join('; ')}; servers of ${groups.join(', ')} healthy`;
  },
  verify: (deployment, _spec, seen) => datastoreHealthy(deployment, seen),
});
