/**
 * A topology: what a deployment under test is made of. Read from YAML, validated with zod, and
 * normalized (durations in seconds, defaults applied) into the `Topology` the workflows carry.
 */
import { z } from 'zod';
import { durationOrZeroSeconds, durationSeconds as duration } from './duration-schema.js';
import { issueLines, readYamlDocument } from './yaml-document.js';

const NAME = /^[a-z][a-z0-9-]{0,30}$/;

const count = (min: number, max: number) =>
  z
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const implementation = z.enum(['tspire', 'spire'], {
  error: 'expected "tspire" (the bundled SPIRE) or "spire" (the real SPIRE binaries in tools/bin)',
});

const datastore = z.union(
  [
    z
      .literal('embedded')
      .describe(
        "in each server group's run directory, one server per group: PGlite for the bundled SPIRE, a SQLite file for real SPIRE",
      ),
    z
      .literal('managed')
      .describe("a PostgreSQL instance of its own, run from this host's binaries in the run directory"),
    z.strictObject({
      postgres: z
        .string()
        .regex(/^postgres(ql)?:\/\//, { error: 'expected a postgres:// URL' })
        .describe('an administrative connection URL; each server group gets its own database there'),
    }),
  ],
  { error: 'expected "embedded", "managed" or { postgres: "postgres://…" }' },
);

/**
 * SPIRE's failure knobs, with SPIRE's names, defaults and semantics, rendered into every server's and
 * agent's config. cache_reload_interval is SPIRE's experimental.cache_reload_interval.
 */
const spireKnobs = z
  .strictObject({
    server: z
      .strictObject({
        max_attested_node_info_staleness: durationOrZeroSeconds
          .default(0)
          .describe(
            'how long a cached attested node authorizes its agent without a datastore read; 0 is off',
          ),
        cache_reload_interval: duration.default(5).describe("reload period of the server's entry cache"),
      })
      .prefault({}),
    agent: z
      .strictObject({
        rebootstrap_mode: z
          .enum(['never', 'auto', 'always'], { error: 'expected "never", "auto" or "always"' })
          .default('never'),
        rebootstrap_delay: duration.default(600),
        // Left unset unless given: SPIRE refuses it next to a rebootstrap mode, and defaults it to true.
        retry_bootstrap: z.boolean({ error: 'expected true or false' }).optional(),
      })
      .prefault({}),
  })
  .prefault({});

export type SpireKnobs = z.output<typeof spireKnobs>;

const topologySchema = z
  .strictObject({
    name: z.string().regex(NAME, { error: 'lowercase letters, digits and dashes, starting with a letter' }),
    trustDomain: z.string().regex(/^[a-z0-9._-]+$/, {
      error: 'a trust domain is lowercase letters, digits, dots, dashes, underscores',
    }),
    implementation: implementation
      .default('tspire')
      .describe("every server group's SPIRE, unless the group names its own; an agent runs its servers'"),
    ttls: z
      .strictObject({
        x509Svid: duration.default(3600),
        jwtSvid: duration.default(300),
        agentSvid: duration.optional(),
        ca: duration.default(86_400),
        downstreamCa: duration.default(86_400),
      })
      .prefault({})
      // SPIRE's agent_ttl defaults to the X509-SVID TTL.
      .transform(({ agentSvid, ...ttls }) => ({ ...ttls, agentSvid: agentSvid ?? ttls.x509Svid })),
    syncInterval: duration.default(5),
    upstream: z
      .strictObject({
        implementation: implementation.optional().describe("the upstream servers' SPIRE and their agents'"),
        servers: count(1, 9).default(1),
        loadBalancer: z.boolean({ error: 'expected true or false' }).default(false),
        datastore: datastore.default('embedded'),
        readReplica: z
          .boolean({ error: 'expected true or false' })
          .default(false)
          .describe(
            "a streaming hot standby of the managed PostgreSQL, which servers read from as SPIRE's ro_connection_string",
          ),
        agents: count(0, 20).default(0),
        workloadsPerAgent: count(0, 100).default(1),
      })
      .prefault({}),
    downstreams: z
      .array(
        z.strictObject({
          name: z
            .string()
            .regex(NAME, { error: 'lowercase letters, digits and dashes, starting with a letter' }),
          implementation: implementation
            .optional()
            .describe("this downstream's servers' SPIRE and their agents'"),
          agents: count(1, 20).default(1),
          workloadsPerAgent: count(0, 100).default(1),
        }),
        { error: 'expected a list of downstreams' },
      )
      .default([]),
    spire: spireKnobs,
  })
  .superRefine((t, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.issues.push({ code: 'custom', path, message, input: undefined });
    if (t.upstream.servers > 1 && t.upstream.datastore === 'embedded')
      issue(
        ['upstream', 'datastore'],
        `${t.upstream.servers} servers share one datastore, which the embedded one cannot serve: use "managed" or give { postgres: URL }`,
      );
    if (t.upstream.readReplica && t.upstream.datastore !== 'managed')
      issue(
        ['upstream', 'readReplica'],
        "a read replica is set up only for the deployment's own PostgreSQL: use datastore: managed",
      );
    const agent = t.spire.agent;
    if (agent.rebootstrap_mode !== 'never' && agent.retry_bootstrap !== undefined)
      issue(
        ['spire', 'agent', 'retry_bootstrap'],
        'SPIRE refuses retry_bootstrap together with a rebootstrap_mode other than "never": drop one',
      );
    if (agent.rebootstrap_mode === 'always')
      issue(
        ['spire', 'agent', 'rebootstrap_mode'],
        'rebootstrap_mode "always" needs a node attestor that can re-attest; the agents here use join_token, which cannot, and SPIRE refuses to start them',
      );
    if (t.ttls.x509Svid > t.ttls.ca) issue(['ttls', 'x509Svid'], 'longer than the CA TTL');
    if (t.ttls.jwtSvid > t.ttls.ca) issue(['ttls', 'jwtSvid'], 'longer than the CA TTL');
    if (t.ttls.agentSvid > t.ttls.ca) issue(['ttls', 'agentSvid'], 'longer than the CA TTL');
    if (t.ttls.downstreamCa > t.ttls.ca)
      issue(['ttls', 'downstreamCa'], 'longer than the CA TTL: the upstream would cap it anyway');
    if (t.downstreams.length > 0 && t.ttls.x509Svid > t.ttls.downstreamCa)
      issue(['ttls', 'x509Svid'], 'longer than the downstream CA TTL');
    if (t.downstreams.length > 0 && t.ttls.agentSvid > t.ttls.downstreamCa)
      issue(['ttls', 'agentSvid'], 'longer than the downstream CA TTL');
    const seen = new Set<string>();
    t.downstreams.forEach((d, i) => {
      // Workload SPIFFE IDs and node ids start with the group's name; the upstream's group is "upstream".
      if (d.name === 'upstream')
        issue(
          ['downstreams', i, 'name'],
          '"upstream" names the upstream servers\' own group: choose another name',
        );
      if (seen.has(d.name)) issue(['downstreams', i, 'name'], `duplicate downstream name "${d.name}"`);
      seen.add(d.name);
    });
  })
  // Each group carries the SPIRE it runs, so that nothing downstream of parsing resolves defaults.
  .transform((t) => ({
    ...t,
    upstream: { ...t.upstream, implementation: t.upstream.implementation ?? t.implementation },
    downstreams: t.downstreams.map((d) => ({ ...d, implementation: d.implementation ?? t.implementation })),
  }));

export type Topology = z.output<typeof topologySchema>;
export type TopologyInput = z.input<typeof topologySchema>;

export class TopologyError extends Error {
  constructor(
    readonly source: string,
    readonly issues: string[],
  ) {
    super(`${source}: invalid topology:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'TopologyError';
  }
}

/** Validates an already-decoded document; `source` names it in errors. */
export function parseTopology(document: unknown, source = 'topology'): Topology {
  const result = topologySchema.safeParse(document);
  if (!result.success) throw new TopologyError(source, issueLines(result.error));
  return result.data;
}

/** The choices a topology file's `implementation` takes; a fidelity run sets each in turn. */
export type ImplementationName = NonNullable<TopologyInput['implementation']>;

/**
 * Reads and validates a topology file. `implementation`, when given, replaces the file's own, its
 * upstream's and every downstream's before validation (a fidelity run compares whole deployments), so
 * the schema judges the overridden topology exactly as it would a file saying so.
 */
export async function loadTopology(
  path: string,
  override: { implementation?: ImplementationName } = {},
): Promise<Topology> {
  const document = await readYamlDocument(path, (issues) => new TopologyError(path, issues));
  if (override.implementation === undefined) return parseTopology(document, path);
  // Anything but a mapping is left as it is, for the schema to refuse in its own words.
  const mapping = typeof document === 'object' && document !== null && !Array.isArray(document);
  return parseTopology(
    mapping ? everyGroupOn(document as Record<string, unknown>, override.implementation) : document,
    `${path} (implementation: ${override.implementation})`,
  );
}

/** The document with `implementation` at the top and none of its own on any server group. */
function everyGroupOn(document: Record<string, unknown>, implementation: ImplementationName) {
  const withoutOwn = (group: unknown) => {
    if (typeof group !== 'object' || group === null || Array.isArray(group)) return group;
    const { implementation: _own, ...rest } = group as Record<string, unknown>;
    return rest;
  };
  return {
    ...document,
    implementation,
    ...('upstream' in document ? { upstream: withoutOwn(document.upstream) } : {}),
    ...(Array.isArray(document.downstreams) ? { downstreams: document.downstreams.map(withoutOwn) } : {}),
  };
}

/** Things that are allowed but will surprise: printed before a spin-up. */
export function topologyWarnings(t: Topology): string[] {
  const warnings: string[] = [];
  if (t.ttls.x509Svid <= 10)
    warnings.push(
      `ttls.x509Svid ${t.ttls.x509Svid}s: SVIDs are backdated 10 s, so each is half spent when issued and agents renew constantly`,
    );
  if (t.syncInterval >= 0.45 * (t.ttls.x509Svid + 10))
    warnings.push(
      `syncInterval ${t.syncInterval}s: agents renew when 45–55 % of an SVID's lifetime (ttl + 10 s) remains, so a sync interval this long lets SVIDs expire before they are renewed`,
    );
  // A server activates its next CA when a sixth of the current one's lifetime remains, and no SVID
  // outlives the CA that signs it; downstream servers sign with their intermediate (downstreamCa).
  const [caName, caTtl] =
    t.downstreams.length > 0 && t.ttls.downstreamCa < t.ttls.ca
      ? ['ttls.downstreamCa', t.ttls.downstreamCa]
      : ['ttls.ca', t.ttls.ca];
  const sixthOf = (ttl: number) => `${Number((ttl / 6).toFixed(1))} s`;
  const sixth = sixthOf(caTtl);
  if (t.ttls.x509Svid > caTtl / 6)
    warnings.push(
      `ttls.x509Svid exceeds a sixth of ${caName} (${sixth}): a CA rotation may issue shorter SVIDs than asked`,
    );
  if (t.downstreams.length > 0 && t.ttls.downstreamCa > t.ttls.ca / 6)
    warnings.push(
      `ttls.downstreamCa exceeds a sixth of ttls.ca (${sixthOf(t.ttls.ca)}): the upstream may sign downstreams shorter intermediates than asked, which a cut-off downstream outlives less`,
    );
  // Equal to the X509-SVID TTL (its default), the agents' TTL would only repeat the warning above.
  if (t.ttls.agentSvid !== t.ttls.x509Svid && t.ttls.agentSvid > caTtl / 6)
    warnings.push(
      `ttls.agentSvid exceeds a sixth of ${caName} (${sixth}): a CA rotation may issue agents shorter SVIDs than asked`,
    );
  if (t.spire.agent.rebootstrap_mode === 'auto')
    warnings.push(
      'spire.agent.rebootstrap_mode "auto": join_token agents cannot re-attest, so SPIRE (and the bundled agent) disables rebootstrapping and an agent cut off by an unseen root exits as with "never"',
    );
  return warnings;
}
