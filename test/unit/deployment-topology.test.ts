import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTopology, parseTopology, topologyWarnings, TopologyError } from '../../deployment/topology.js';

const topologies = fileURLToPath(new URL('../../topologies/', import.meta.url));

function issuesOf(document: unknown): string[] {
  try {
    parseTopology(document, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(TopologyError);
    return (error as TopologyError).issues;
  }
  throw new Error('expected the topology to be refused');
}

describe('topology files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-topo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the shipped demo and reference topologies with durations in seconds', async () => {
    const demo = await loadTopology(join(topologies, 'demo.yaml'));
    expect(demo).toMatchObject({
      name: 'demo',
      implementation: 'tspire',
      ttls: { x509Svid: 30, jwtSvid: 30, ca: 600, downstreamCa: 300 },
      syncInterval: 2,
      upstream: { servers: 1, loadBalancer: false, datastore: 'embedded' },
      downstreams: [{ name: 'east', agents: 1, workloadsPerAgent: 2 }],
    });
    const reference = await loadTopology(join(topologies, 'reference.yaml'));
    expect(reference.upstream).toMatchObject({ servers: 3, loadBalancer: true });
    expect(reference.ttls).toEqual({ x509Svid: 3600, jwtSvid: 300, ca: 86_400, downstreamCa: 86_400 });
    expect(reference.downstreams.map((d) => d.name)).toEqual(['prod', 'staging']);
  });

  it('fills SPIRE defaults for what a minimal file leaves out', () => {
    expect(parseTopology({ name: 'tiny', trustDomain: 'td' })).toEqual({
      name: 'tiny',
      trustDomain: 'td',
      implementation: 'tspire',
      ttls: { x509Svid: 3600, jwtSvid: 300, ca: 86_400, downstreamCa: 86_400 },
      syncInterval: 5,
      upstream: { servers: 1, loadBalancer: false, datastore: 'embedded' },
      downstreams: [],
    });
  });

  it('names the path and the reason of every bad field', () => {
    const issues = issuesOf({
      name: 'Bad Name',
      trustDomain: 'td',
      ttls: { x509Svid: '1x', ca: '1h', downstreamCa: '2h' },
      upstream: { servers: 3, datastore: 'embedded', extra: 1 },
      downstreams: [{ name: 'a' }, { name: 'a', agents: 0 }],
      syncInterval: -1,
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name: lowercase/),
        expect.stringMatching(/^ttls\.x509Svid: invalid duration "1x"/),
        expect.stringMatching(/^upstream: .*extra/),
        expect.stringMatching(/^downstreams\.1\.agents: must be at least 1/),
        expect.stringMatching(/^syncInterval: invalid duration/),
      ]),
    );
    expect(issuesOf({ name: 'x', trustDomain: 'td', upstream: { servers: 3 } })).toEqual([
      expect.stringMatching(/^upstream\.datastore: 3 servers share one datastore/),
    ]);
    expect(
      issuesOf({ name: 'x', trustDomain: 'td', ttls: { ca: '1h', downstreamCa: '2h' }, downstreams: [] }),
    ).toEqual([expect.stringMatching(/^ttls\.downstreamCa: longer than the CA TTL/)]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', downstreams: [{ name: 'a' }, { name: 'a' }] })).toEqual([
      expect.stringMatching(/^downstreams\.1\.name: duplicate downstream name "a"/),
    ]);
    expect(issuesOf({ name: 'x', trustDomain: 'td', implementation: 'spire' })).toEqual([
      expect.stringMatching(/^implementation: .*reserved/),
    ]);
    expect(issuesOf('just a string')).toHaveLength(1);
  });

  it('reports unreadable and malformed files with the file name', async () => {
    await expect(loadTopology(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml.*ENOENT/s);
    writeFileSync(join(dir, 'broken.yaml'), 'name: [unclosed\n');
    await expect(loadTopology(join(dir, 'broken.yaml'))).rejects.toThrow(/broken\.yaml.*not valid YAML/s);
  });

  it('warns about TTLs that the 10 s backdating or CA rotation will distort', () => {
    const t = parseTopology({
      name: 'x',
      trustDomain: 'td',
      ttls: { x509Svid: '10s', jwtSvid: '10s', ca: '30s', downstreamCa: '30s' },
    });
    expect(topologyWarnings(t)).toEqual([
      expect.stringMatching(/half spent when issued/),
      expect.stringMatching(/a sixth of ttls\.ca/),
    ]);
    const slowSync = parseTopology({
      name: 'x',
      trustDomain: 'td',
      ttls: { x509Svid: '30s' },
      syncInterval: '20s',
    });
    expect(topologyWarnings(slowSync)).toEqual([expect.stringMatching(/expire before they are renewed/)]);
  });
});
