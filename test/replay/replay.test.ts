import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../deployment/host/package-root.js';

/**
 * Recorded histories replay against the current workflow code: a change that would break running
 * deployments or drills fails here as a determinism error. Spin-up → rotate → teardown, a downstream
 * bootstrap, an X.509 rotation recorded before the per-server report, a JWT and an X.509 rotation with
 * it come from real runs (RECORD_HISTORIES=1 on the lifecycle test); a
 * passed drill and a suite stopped mid-drill come from the workflows run with mocked activities
 * (RECORD_HISTORIES=1 on test/integration/workflows-drill.test.ts): the activities' results are
 * canned, the workflow's commands are those of a real lb-down drill.
 */
const dir = join(packageRoot(), 'test', 'replay', 'histories');
const workflowTypes: Record<string, string> = {
  'deployment-spin-up-rotate-teardown.json': 'deploymentWorkflow',
  'downstream-bootstrap.json': 'downstreamBootstrapWorkflow',
  'drill-passed.json': 'drillWorkflow',
  'rotation-x509.json': 'rotationWorkflow',
  'rotation-jwt.json': 'rotationWorkflow',
  'rotation-x509-per-server.json': 'rotationWorkflow',
  'suite-stopped.json': 'suiteWorkflow',
};

/** Workflow ids the code reads (a suite names its drills from its own), to replay under the recorded one. */
const workflowIds: Record<string, string> = { 'suite-stopped.json': 'suite/stopped' };

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
        workflowIds[file] ?? `${workflowType}-replay`,
      );
    }, 60_000);
  }
});
