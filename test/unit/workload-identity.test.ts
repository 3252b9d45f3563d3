import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Deployment } from '../../deployment/deployment.js';
import { loadTopology } from '../../deployment/topology/topology.js';
import { WORKLOAD_GID_BASE, processSelectors, workloadIdentity } from '../../deployment/workload-identity.js';
import { repoRoot } from '../support/tools.js';

describe('workload identity', () => {
  it('as root, gives each slot a gid of its own from its position, selected by that gid alone', () => {
    expect(workloadIdentity(0, { uid: 0 })).toEqual({
      gid: WORKLOAD_GID_BASE,
      selectors: [`unix:gid:${WORKLOAD_GID_BASE}`],
    });
    expect(workloadIdentity(3, { uid: 0 })).toEqual({
      gid: WORKLOAD_GID_BASE + 3,
      selectors: [`unix:gid:${WORKLOAD_GID_BASE + 3}`],
    });
  });

  it('not as root, falls back to the shared uid of the worker, with no gid', () => {
    expect(workloadIdentity(0, { uid: 1000 })).toEqual({ selectors: ['unix:uid:1000'] });
    expect(workloadIdentity(5, { uid: 1000 })).toEqual({ selectors: ['unix:uid:1000'] });
    expect(processSelectors({ uid: 1000 })).toEqual(['unix:uid:1000']);
  });

  it('gives every workload of the demo topology its own identity, the same on every look', async () => {
    const topology = await loadTopology(join(repoRoot, 'topologies', 'demo.yaml'));
    const slots = Deployment.preview(topology).workloadIdentities();
    expect(slots).toHaveLength(4);
    expect(Deployment.preview(topology).workloadIdentities()).toEqual(slots);
    if (process.getuid?.() === 0) {
      expect(slots.map((s) => s.gid)).toEqual([0, 1, 2, 3].map((i) => WORKLOAD_GID_BASE + i));
      expect(new Set(slots.map((s) => s.selectors.join())).size).toBe(4);
    } else {
      console.warn('not root: checking the shared-uid fallback instead of distinct gids');
      expect(slots.every((s) => s.gid === undefined)).toBe(true);
      expect(slots.map((s) => s.selectors)).toEqual(slots.map(() => processSelectors()));
    }
  });
});
