import { describe, expect, it } from 'vitest';
import type { RegistrationEntry } from '../../identity-core/datastore/records.js';
import { EntryCache } from '../../identity-core/server/entry-cache.js';
import { waitUntil } from '../support/waits.js';

const entry = (id: string, parentId: string, spiffeId: string, expiresAt = 0): RegistrationEntry => ({
  id,
  parentId,
  spiffeId,
  selectors: [{ type: 'unix', value: 'uid:1' }],
  x509SvidTtl: 0,
  jwtSvidTtl: 0,
  downstream: false,
  admin: false,
  dnsNames: [],
  hint: '',
  expiresAt,
  createdAt: 0,
  revisionNumber: 0,
});

describe('EntryCache', () => {
  const agent = 'spiffe://td/spire/agent/join_token/t';
  const entries = [
    entry('alias', agent, 'spiffe://td/node'),
    entry('web', 'spiffe://td/node', 'spiffe://td/web'),
    entry('nested', 'spiffe://td/web', 'spiffe://td/web/sidecar'),
    entry('other', 'spiffe://td/other-node', 'spiffe://td/db'),
    entry('expired', 'spiffe://td/node', 'spiffe://td/old', 1),
  ];

  it('authorizes entries reachable from the agent through parent links, skipping expired ones', async () => {
    const cache = new EntryCache({ listAll: async () => entries }, 60_000, {
      reloaded: () => undefined,
      reloadFailed: () => undefined,
    });
    await cache.reload();
    expect(
      cache
        .authorizedEntries(agent)
        .map((e) => e.id)
        .sort(),
    ).toEqual(['alias', 'nested', 'web']);
    expect(cache.authorizedEntries('spiffe://td/spire/agent/join_token/other')).toEqual([]);
  });

  it('keeps the last good snapshot when a reload fails, as during a database outage', async () => {
    let down = false;
    const failures: unknown[] = [];
    const cache = new EntryCache(
      {
        listAll: async () => {
          if (down) throw new Error('datastore unavailable');
          return entries;
        },
      },
      20,
      { reloaded: () => undefined, reloadFailed: (e) => failures.push(e) },
    );
    await cache.start();
    down = true;
    await waitUntil('a reload to fail', () => failures.length > 0, 5_000);
    cache.stop();
    expect(failures.length).toBeGreaterThan(0);
    expect(cache.authorizedEntries(agent)).toHaveLength(3);
  });

  it('applies single writes in place: moved, removed and downstream entries', async () => {
    const cache = new EntryCache({ listAll: async () => entries }, 60_000, {
      reloaded: () => undefined,
      reloadFailed: () => undefined,
    });
    await cache.reload();
    cache.upsert(entry('db2', 'spiffe://td/node', 'spiffe://td/db2'));
    expect(cache.authorizedEntries(agent).map((e) => e.id)).toContain('db2');
    // Re-parenting an entry takes it away from the old parent's agent.
    cache.upsert(entry('web', 'spiffe://td/other-node', 'spiffe://td/web'));
    expect(cache.authorizedEntries(agent).map((e) => e.id)).not.toContain('web');
    expect(cache.authorizedEntries(agent).map((e) => e.id)).not.toContain('nested');
    expect(cache.get('web')?.parentId).toBe('spiffe://td/other-node');
    cache.remove('db2');
    expect(cache.get('db2')).toBeUndefined();
    expect(cache.authorizedEntries(agent).map((e) => e.id)).toEqual(['alias']);

    cache.upsert({ ...entry('down', 'spiffe://td/node', 'spiffe://td/downstream'), downstream: true });
    expect(cache.isDownstream('spiffe://td/downstream')).toBe(true);
    expect(cache.isDownstream('spiffe://td/web')).toBe(false);
    cache.remove('down');
    expect(cache.isDownstream('spiffe://td/downstream')).toBe(false);
  });
});
