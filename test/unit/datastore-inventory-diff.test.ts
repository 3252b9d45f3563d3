import { describe, expect, it } from 'vitest';
import {
  describeInventoryDiff,
  diffInventory,
  type DatastoreInventory,
  type InventoryAgent,
  type InventoryEntry,
} from '../../deployment/postgres/datastore-inventory.js';

const td = 'spiffe://example.org';

const entry = (name: string, revision = 0): InventoryEntry => ({
  id: `id-${name}`,
  spiffeId: `${td}/${name}`,
  parentId: `${td}/spire/agent/x`,
  revision,
});

const agent = (n: number, serial: string, newSerial = ''): InventoryAgent => ({
  spiffeId: `${td}/spire/agent/agent-${n}`,
  serial,
  newSerial,
  expiresAt: 1_700_000_000,
});

/** A datastore with two entries, two agents, one bundle and one journal mid-rotation. */
const base = (): DatastoreInventory => ({
  takenAt: 1_700_000_000_000,
  entries: [entry('web'), entry('db', 2)],
  agents: [agent(0, '100'), agent(1, '200', '201')],
  joinTokens: 1,
  bundles: [{ trustDomain: 'example.org', x509: ['aa11', 'bb22'], jwt: ['kid-1'] }],
  journal: [
    {
      id: 1,
      activeX509AuthorityId: 'bb22',
      authorities: [
        { kind: 'x509', id: 'bb22', status: 'ACTIVE', tainted: false },
        { kind: 'x509', id: 'aa11', status: 'OLD', tainted: false },
        { kind: 'jwt', id: 'kid-1', status: 'ACTIVE', tainted: false },
      ],
    },
  ],
});

describe('diffInventory', () => {
  it('finds nothing between a datastore and itself, and describes nothing', () => {
    const diff = diffInventory(base(), base());
    expect(diff).toEqual({
      entries: { missing: [], stale: [], extra: [] },
      agents: { missing: [], staleSerial: [], banLifted: [] },
      bundles: [],
      journal: { missingAuthorities: [], activeChanged: [] },
      empty: true,
    });
    expect(describeInventoryDiff(diff)).toEqual([]);
  });

  it('ignores when the snapshots were taken and how many join tokens there are', () => {
    const live = { ...base(), takenAt: 1_800_000_000_000, joinTokens: 7 };
    expect(diffInventory(live, base()).empty).toBe(true);
  });

  it('lists entries registered, updated and deleted after the backup', () => {
    const live = base();
    live.entries = [entry('web', 1), entry('api'), entry('cache')];
    const diff = diffInventory(live, base());
    expect(diff.entries.missing.map((e) => e.spiffeId)).toEqual([`${td}/api`, `${td}/cache`]);
    expect(diff.entries.stale).toEqual([
      { id: 'id-web', spiffeId: `${td}/web`, liveRevision: 1, backupRevision: 0 },
    ]);
    expect(diff.entries.extra.map((e) => e.spiffeId)).toEqual([`${td}/db`]);
    expect(diff.empty).toBe(false);
    expect(describeInventoryDiff(diff)).toEqual([
      `2 registration entries registered after the backup: ${td}/api, ${td}/cache`,
      `1 registration entry updated after the backup, restored at an older revision: ${td}/web (revision 1, backup 0)`,
      `1 registration entry deleted after the backup, back once restored: ${td}/db`,
    ]);
  });

  it('lists agents attested after the backup', () => {
    const live = base();
    live.agents.push(agent(2, '300'));
    const diff = diffInventory(live, base());
    expect(diff.agents.missing).toEqual([agent(2, '300')]);
    expect(diff.agents.staleSerial).toEqual([]);
    expect(describeInventoryDiff(diff)).toEqual([
      `1 agent attested after the backup, unknown to the restored server: ${td}/spire/agent/agent-2`,
    ]);
  });

  it('flags an agent whose current serial the backup knows neither as current nor as new', () => {
    const live = base();
    live.agents = [agent(0, '101'), agent(1, '200', '201')];
    const diff = diffInventory(live, base());
    expect(diff.agents.staleSerial).toEqual([
      { spiffeId: `${td}/spire/agent/agent-0`, serial: '101', backupSerial: '100', backupNewSerial: '' },
    ]);
    expect(describeInventoryDiff(diff)).toEqual([
      `agent ${td}/spire/agent/agent-0 renewed its SVID after the backup (serial 101): the restored server will refuse it`,
    ]);
  });

  it('does not flag an agent now using the SVID the backup holds as its new serial: the server accepts it', () => {
    const live = base();
    // Backed up between RenewAgent and the agent's first call with the new SVID.
    live.agents = [agent(0, '100'), agent(1, '201')];
    expect(diffInventory(live, base()).empty).toBe(true);
  });

  it('does not flag an agent renewed after the backup while it still presents the serial the backup has', () => {
    const live = base();
    live.agents = [agent(0, '100', '102'), agent(1, '200', '201')];
    expect(diffInventory(live, base()).empty).toBe(true);
  });

  it('reports a ban made after the backup as lifted, not as a renewal', () => {
    const live = base();
    live.agents = [agent(0, ''), agent(1, '200', '201')];
    const diff = diffInventory(live, base());
    expect(diff.agents.banLifted).toEqual([`${td}/spire/agent/agent-0`]);
    expect(diff.agents.staleSerial).toEqual([]);
    expect(describeInventoryDiff(diff)).toEqual([
      `1 agent banned after the backup, no longer banned once restored: ${td}/spire/agent/agent-0`,
    ]);
    const bannedInBoth = { ...base(), agents: [agent(0, '')] };
    expect(diffInventory(bannedInBoth, bannedInBoth).empty).toBe(true);
  });

  it('lists bundle authorities added after the backup, per trust domain', () => {
    const live = base();
    live.bundles = [
      { trustDomain: 'example.org', x509: ['bb22', 'cc33'], jwt: ['kid-1', 'kid-2'] },
      { trustDomain: 'federated.test', x509: ['dd44'], jwt: [] },
    ];
    const diff = diffInventory(live, base());
    expect(diff.bundles).toEqual([
      { trustDomain: 'example.org', missingX509: ['cc33'], missingJwt: ['kid-2'] },
      { trustDomain: 'federated.test', missingX509: ['dd44'], missingJwt: [] },
    ]);
    expect(describeInventoryDiff(diff)).toEqual([
      'trust bundle of example.org lacks 1 X.509 authority added after the backup: cc33',
      'trust bundle of example.org lacks 1 JWT authority added after the backup: kid-2',
      'trust bundle of federated.test lacks 1 X.509 authority added after the backup: dd44',
    ]);
  });

  it('lists journal authorities created after the backup and a changed active authority', () => {
    const live = base();
    live.journal = [
      {
        id: 1,
        activeX509AuthorityId: 'cc33',
        authorities: [
          { kind: 'x509', id: 'cc33', status: 'ACTIVE', tainted: false },
          { kind: 'x509', id: 'bb22', status: 'OLD', tainted: true },
          { kind: 'jwt', id: 'kid-1', status: 'ACTIVE', tainted: false },
          { kind: 'jwt', id: 'kid-2', status: 'PREPARED', tainted: false },
        ],
      },
    ];
    live.bundles = base().bundles;
    const diff = diffInventory(live, base());
    expect(diff.journal).toEqual({
      missingAuthorities: [
        { journalId: 1, kind: 'x509', id: 'cc33', status: 'ACTIVE', tainted: false },
        { journalId: 1, kind: 'jwt', id: 'kid-2', status: 'PREPARED', tainted: false },
      ],
      activeChanged: [{ journalId: 1, live: 'cc33', backup: 'bb22' }],
    });
    expect(describeInventoryDiff(diff)).toEqual([
      'CA journal 1 lacks 2 authorities created after the backup: x509 cc33 (ACTIVE), jwt kid-2 (PREPARED)',
      'CA journal 1 has active X.509 authority cc33; the backup has bb22',
    ]);
  });

  it('treats a journal the backup lacks altogether as all missing, active authority included', () => {
    const live = base();
    live.journal.push({
      id: 2,
      activeX509AuthorityId: 'ee55',
      authorities: [{ kind: 'x509', id: 'ee55', status: 'ACTIVE', tainted: false }],
    });
    const diff = diffInventory(live, base());
    expect(diff.journal).toEqual({
      missingAuthorities: [{ journalId: 2, kind: 'x509', id: 'ee55', status: 'ACTIVE', tainted: false }],
      activeChanged: [{ journalId: 2, live: 'ee55', backup: '' }],
    });
    expect(describeInventoryDiff(diff)).toContain(
      'CA journal 2 has active X.509 authority ee55; the backup has none',
    );
  });

  it('matches journal authorities by kind as well as id', () => {
    const live = base();
    live.journal[0]!.authorities.push({ kind: 'jwt', id: 'bb22', status: 'PREPARED', tainted: false });
    expect(diffInventory(live, base()).journal.missingAuthorities).toEqual([
      { journalId: 1, kind: 'jwt', id: 'bb22', status: 'PREPARED', tainted: false },
    ]);
  });

  it('names a handful of items per line and counts the rest', () => {
    const live = base();
    live.entries.push(...Array.from({ length: 8 }, (_, i) => entry(`w${i}`)));
    expect(describeInventoryDiff(diffInventory(live, base()))).toEqual([
      `8 registration entries registered after the backup: ${td}/w0, ${td}/w1, ${td}/w2, ${td}/w3, ${td}/w4 and 3 more`,
    ]);
  });

  it('is plain JSON, so it survives workflow history', () => {
    const live = base();
    live.entries.push(entry('api'));
    const diff = diffInventory(live, base());
    expect(JSON.parse(JSON.stringify(diff))).toEqual(diff);
  });
});
