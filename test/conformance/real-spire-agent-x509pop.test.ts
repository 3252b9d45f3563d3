import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess, type ManagedProcess } from '../../deployment/host/managed-process.js';
import { IdentityStack } from '../../deployment/stack/identity-stack.js';
import { fingerprint } from '../../identity-core/pki/x509pop.js';
import { parsePemCertificates } from '../../identity-core/spiffe/pem.js';
import { verifyX509Svid } from '../../identity-core/spiffe/x509-svid.js';
import { makeRunDir } from '../support/run-dir.js';
import { pinnedTool } from '../support/tools.js';
import { fetchX509Svid } from '../support/workload-client.js';

/**
 * The real spire-agent v1.13.3 attesting with its own x509pop plugin to tspire-server: SPIRE's
 * challenge-response and JSON formats on the wire, the agent ID SPIRE derives
 * (`/spire/agent/x509pop/<SHA-1 of the leaf>`), and a workload SVID served afterwards.
 */
const spireAgent = pinnedTool('spire-agent');
if (spireAgent.missing) console.warn(spireAgent.missing);

const TD = 'example.org';
const WORKLOAD = `spiffe://${TD}/x509pop-conformance/workload`;

describe.skipIf(!!spireAgent.missing)('real spire-agent with x509pop against tspire-server', () => {
  const run = makeRunDir('srx-');
  let stack: IdentityStack;
  let agent: ManagedProcess | undefined;
  const agentSocket = join(run.dir, 'real-agent.sock');
  let agentId: string;

  beforeAll(async () => {
    // The stack's own tspire-agent is never started: it is here for its node CA and certificate.
    stack = await IdentityStack.create({ runDir: run.dir, nodeAttestor: 'x509pop' });
    await stack.startServer();
    await stack.writeBootstrapBundle();
    const certificatePath = join(run.dir, 'agent-x509pop.pem');
    agentId = `spiffe://${TD}/spire/agent/x509pop/${fingerprint(parsePemCertificates(readFileSync(certificatePath))[0]!)}`;
    await stack.admin().ensureEntry({
      parentId: agentId,
      spiffeId: WORKLOAD,
      selectors: [`unix:uid:${process.getuid!()}`],
    });
    const config = join(run.dir, 'real-agent.conf');
    writeFileSync(
      config,
      stack.implementation.renderAgentConfig({
        trustDomain: TD,
        serverPort: stack.serverPort,
        socketPath: agentSocket,
        dataDir: join(run.dir, 'real-agent-data'),
        trustBundlePath: stack.bundlePath,
        syncInterval: '1s',
        logLevel: 'DEBUG',
        nodeAttestor: {
          name: 'x509pop',
          certificatePath,
          privateKeyPath: join(run.dir, 'agent-x509pop.key.pem'),
        },
      }),
    );
    agent = startProcess(run.dir, 'spire-agent', spireAgent.path!, ['run', '-config', config]);
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await stack?.stop();
    run.remove();
  });

  it('attests as /spire/agent/x509pop/<fingerprint>, re-attestable, and serves its workload', async () => {
    const svid = await fetchX509Svid(agentSocket, 45_000).catch((error: Error) => {
      throw new Error(`${error.message}\n--- spire-agent log ---\n${agent!.log().slice(-4000)}`);
    });
    expect(svid.spiffeId).toBe(WORKLOAD);
    verifyX509Svid(svid.chain, parsePemCertificates(await stack.admin().bundlePem()));
    expect(agent!.log()).toMatch(/Node attestation was successful.*reattestable=true/);
    const listed = await stack.serverCli(['agent', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    const block = listed.stdout.split('\n\n').find((b) => b.includes(`SPIFFE ID         : ${agentId}`));
    expect(block).toMatch(/Attestation type\s*: x509pop/);
    expect(block).toMatch(/Can re-attest\s*: true/);
  });
});
