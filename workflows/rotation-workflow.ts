import { patched, setCurrentDetails } from '@temporalio/workflow';
import type { ServerRotation } from '../activities/deployment-activities.js';
import type { AuthorityKind } from '../deployment/authority-rotation.js';
import { quick, waits } from './activity-options.js';

export interface RotationInput {
  deploymentId: string;
  kind: AuthorityKind;
}

export interface RotationResult {
  kind: AuthorityKind;
  /** Upstream server 0's authorities; `servers` has every server's. */
  oldAuthority: string;
  newAuthority: string;
  /** Each upstream server's old → new authority (absent from rotations run before it was recorded). */
  servers?: ServerRotation[];
  steps: string[];
}

/**
 * A forced rotation of the root's X.509 authority or JWT key, as SPIRE's operators run it: prepare,
 * wait until every bundle trusts the new authority, activate, taint the old one, wait until every
 * workload holds an SVID from the new one (X.509) or no workload is handed a JWT-SVID from the old
 * one (JWT), revoke the old one,
 * and verify it has left every bundle. Each step is idempotent, so a retried or resumed rotation picks up where it was.
 */
export async function rotationWorkflow(input: RotationInput): Promise<RotationResult> {
  const { deploymentId: id, kind } = input;
  const label = kind === 'x509' ? 'X.509 authority' : 'JWT key';
  const steps: string[] = [];
  const step = (text: string) => {
    steps.push(text);
    setCurrentDetails(`Rotating the ${label}: ${text}`);
  };

  const before = await quick.authorityState({ id, kind });
  const oldAuthority = before.old && before.oldTainted ? before.old : before.active!;
  step(`preparing a new ${label} (active: ${oldAuthority})`);
  const newAuthority =
    before.old && before.oldTainted
      ? before.active!
      : await quick.localAuthority({ id, kind, action: 'prepare' });
  step(`waiting until every bundle trusts ${newAuthority}`);
  await waits.waitBundles({ id, kind, include: [oldAuthority, newAuthority] });
  step(`activating ${newAuthority}`);
  await quick.localAuthority({ id, kind, action: 'activate', authorityId: newAuthority });
  step(`tainting ${oldAuthority}`);
  await quick.localAuthority({ id, kind, action: 'taint', authorityId: oldAuthority });
  // Rotations recorded before these steps existed replay without them.
  const perServer = patched('jwt-wait-and-per-server-report');
  if (kind === 'x509') {
    step(`waiting until every workload and agent holds an SVID from ${newAuthority}`);
    await waits.waitWorkloadsOn({ id, authorityId: newAuthority });
  } else if (perServer) {
    step(`waiting until no workload is handed JWT-SVIDs signed by ${oldAuthority}`);
    await waits.waitWorkloadsOffJwtKey({ id, keyId: oldAuthority });
  }
  step(`revoking ${oldAuthority}`);
  await quick.localAuthority({ id, kind, action: 'revoke', authorityId: oldAuthority });
  step(`waiting until no bundle holds ${oldAuthority}`);
  await waits.waitBundles({ id, kind, include: [newAuthority], exclude: [oldAuthority] });
  if (!perServer) {
    step(`done: ${label} rotated from ${oldAuthority} to ${newAuthority}`);
    return { kind, oldAuthority, newAuthority, steps };
  }
  const servers = await quick.rotatedAuthorities({ id, oldAuthority, newAuthority });
  step(
    `done: ${label} rotated on ${servers.map((s) => `${s.server} ${s.oldAuthority} → ${s.newAuthority}`).join(', ')}`,
  );
  return { kind, oldAuthority, newAuthority, servers, steps };
}
