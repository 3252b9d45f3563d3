// The project's import directions (ARCHITECTURE.md and the folder READMEs), checked by `npm run lint`.
// Paths are relative to the repository root; npm packages resolve under node_modules/.

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles anywhere, type-only imports included: each concept sits at one level.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'An import the cruiser cannot resolve would escape every other rule.',
      from: { pathNot: '^bin/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'identity-core-stands-alone',
      severity: 'error',
      comment: 'identity-core (the bundled SPIRE) depends on nothing of the project above it.',
      from: { path: '^identity-core/' },
      to: { dependencyTypes: ['local'], pathNot: '^identity-core/' },
    },
    {
      name: 'identity-core-runtime-not-cli',
      severity: 'error',
      comment: "server/ and agent/ never import cli/ (SPIRE's cmd -> pkg).",
      from: { path: '^identity-core/(server|agent)/' },
      to: { path: '^identity-core/cli/' },
    },
    {
      name: 'identity-core-cli-only-from-bin-and-tests',
      severity: 'error',
      comment: 'The tspire executables are reached through the bin/ shims; only tests call them in process.',
      from: { pathNot: '^(identity-core/cli|bin|test)/' },
      to: { path: '^identity-core/cli/' },
    },
    {
      name: 'identity-core-datastore-only-from-server',
      severity: 'error',
      comment: "The datastore is the server's (and the CLI's, the results store's, tests' and benchmarks').",
      from: { pathNot: '^(identity-core/(datastore|server|cli)|results|test|bench)/' },
      to: { path: '^identity-core/datastore/(?!records\\.ts$)' },
    },
    {
      name: 'identity-core-datastore-records-types-only',
      severity: 'error',
      comment: 'Elsewhere only the record types of datastore/records.ts, as `import type` (agent/, proto/).',
      from: { pathNot: '^(identity-core/(datastore|server|cli)|results|test|bench)/' },
      to: { path: '^identity-core/datastore/records\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'deployment-not-above',
      severity: 'error',
      comment: 'deployment/ knows nothing of drills, Temporal, the CLIs, results or reports.',
      from: { path: '^deployment/' },
      to: { path: '^(scenarios|activities|workflows|cli|workers|results|reports)/' },
    },
    {
      name: 'activities-not-above',
      severity: 'error',
      comment: 'Activities are called by workflows and registered by workers; they import neither.',
      from: { path: '^activities/' },
      to: { path: '^(workflows|cli|workers)/' },
    },
    {
      name: 'workflows-deterministic',
      severity: 'error',
      comment:
        'Workflow code runs in the deterministic sandbox: values only from the workflow SDK, other ' +
        'workflows and the pure scenario modules; anything else as `import type`.',
      from: { path: '^workflows/' },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: [
          '^workflows/',
          '^node_modules/@temporalio/(workflow|common)/',
          '^scenarios/(ttl-model|judge|drill-plan|expectations|plural)\\.ts$',
        ],
      },
    },
    {
      name: 'reports-only-scenarios',
      severity: 'error',
      comment:
        'Reports render drill records: scenarios/, the probe sample types and node built-ins, nothing else.',
      from: { path: '^reports/' },
      to: {
        pathNot: '^(reports|scenarios)/|^deployment/probes/probe-sample\\.ts$',
        dependencyTypesNot: ['core'],
      },
    },
  ],
  options: {
    doNotFollow: { path: ['^node_modules/', '^identity-core/proto/gen/'] },
    exclude: { path: '^(dist|node_modules|tools|\\.run|identity-core/native/build)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
