import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../deployment/host/package-root.js';

/**
 * Histories recorded from real runs (spin-up → rotate → teardown, a downstream bootstrap, an X.509
 * rotation; refresh with RECORD_HISTORIES=1 on the lifecycle test) replay against the current
 * workflow code: a change that would break running deployments fails here as a determinism error.
 */
const dir = join(packageRoot(), 'test', 'replay', 'histories');
const workflowTypes: Record<string, string> = {
  'deployment-spin-up-rotate-teardown.json': 'deploymentWorkflow',
  'downstream-bootstrap.json': 'downstreamBootstrapWorkflow',
  'rotation-x509.json': 'rotationWorkflow',
};

describe('workflow replay', () => {
  it('has a recorded history for each workflow', () => {
    expect(readdirSync(dir).sort()).toEqual(Object.keys(workflowTypes).sort());
  });

  for (const [file, workflowType] of Object.entries(workflowTypes)) {
    it(`replays ${file} (${workflowType})`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      expect(history.events?.length).toBeGreaterThan(10);
      await Worker.runReplayHistory(
        { workflowsPath: join(packageRoot(), 'dist', 'workflows', 'index.js') },
        history,
        `${workflowType}-replay`,
      );
    }, 60_000);
  }
});
