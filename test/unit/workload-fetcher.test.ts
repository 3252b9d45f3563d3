import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFetchRequest } from '../../deployment/probes/workload-fetch-protocol.js';
import { WorkloadFetcher, withWorkloadFetcher } from '../../deployment/probes/workload-fetcher.js';
import { peerCredentialsOf, type PeerCredentials } from '../../identity-core/transport/peer-credentials.js';
import { makeRunDir } from '../support/run-dir.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping the fetch-as-a-gid checks: taking on another group id needs root');

describe('workload fetcher protocol', () => {
  it('answers a line it cannot read with the reason, not a crash', async () => {
    expect(await answerFetchRequest('not json')).toMatchObject({ id: -1, error: /bad request/ });
    expect(
      await answerFetchRequest(JSON.stringify({ id: 1, kind: 'x509', gid: -1, socket: '/x' })),
    ).toMatchObject({ id: -1, error: /bad request/ });
  });
});

describe.skipIf(!isRoot)('workload fetcher as root', () => {
  const run = makeRunDir('sdwf-');
  const socket = join(run.dir, 'agent.sock');
  const missing = join(run.dir, 'nobody.sock');
  // Who connected, as the kernel saw it (what an agent attests a workload by); each connection is
  // then closed, so every fetch answers "nothing".
  const peers: PeerCredentials[] = [];
  const server = net.createServer((connection) => {
    const fd = (connection as unknown as { _handle: { fd: number } })._handle.fd;
    peers.push(peerCredentialsOf(fd));
    connection.destroy();
  });

  beforeAll(() => new Promise<void>((resolve) => server.listen(socket, resolve)));
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    run.remove();
  });

  it('connects as each workload in turn, one request at a time, from a child that outlives the requests', async () => {
    const fetcher = new WorkloadFetcher();
    try {
      peers.length = 0;
      // Asked together, answered one after another: the effective gid is the whole child's.
      const answers = await Promise.all([
        fetcher.x509Svids({ socket, gid: 61001 }),
        fetcher.x509Svids({ socket, gid: 61002 }),
        fetcher.x509Svids({ socket, gid: 61001 }),
      ]);
      expect(answers).toEqual([[], [], []]);
      const gids = peers.map((p) => p.gid).filter((gid, i, all) => gid !== all[i - 1]);
      expect(gids).toEqual([61001, 61002, 61001]);
      expect(peers.every((p) => p.uid === 0 && p.pid !== process.pid)).toBe(true);
      // One child served them all.
      expect(new Set(peers.map((p) => p.pid)).size).toBe(1);

      // A slot without a gid (not root) is fetched from this process, as itself.
      peers.length = 0;
      expect(await fetcher.x509Svids({ socket })).toEqual([]);
      expect(peers.map((p) => p.pid)).toContain(process.pid);
      expect(peers.every((p) => p.gid === process.getegid!())).toBe(true);
    } finally {
      await fetcher.close();
    }
  });

  it('passes a failed JWT fetch on as an error, and is usable again after', async () => {
    await withWorkloadFetcher(async (fetcher) => {
      await expect(
        fetcher.jwtSvid({ socket: missing, gid: 61003, spiffeId: 'spiffe://t/w' }, 'aud', 2000),
      ).rejects.toThrow();
      peers.length = 0;
      expect(await fetcher.x509Svids({ socket, gid: 61004 })).toEqual([]);
      expect(peers.map((p) => p.gid)).toContain(61004);
    });
  });
});
