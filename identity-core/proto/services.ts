/**
 * Loads the project's .proto files at run time and hands out typed gRPC service
 * definitions (for servers) and client constructors (for callers).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as WorkloadProto } from './gen/workload.js';
import type { ProtoGrpcType as HealthProto } from './gen/health.js';
import type { ProtoGrpcType as AgentProto } from './gen/agent.js';
import type { ProtoGrpcType as EntryProto } from './gen/entry.js';
import type { ProtoGrpcType as SvidProto } from './gen/svid.js';
import type { ProtoGrpcType as BundleProto } from './gen/bundle.js';
import type { ProtoGrpcType as LocalAuthorityProto } from './gen/localauthority.js';
import type { ProtoGrpcType as LoggerProto } from './gen/logger.js';

export type { SpiffeWorkloadAPIClient, SpiffeWorkloadAPIHandlers } from './gen/SpiffeWorkloadAPI.js';
export type { HealthClient, HealthHandlers } from './gen/grpc/health/v1/Health.js';
export type { AgentClient, AgentHandlers } from './gen/spire/api/server/agent/v1/Agent.js';
export type { EntryClient, EntryHandlers } from './gen/spire/api/server/entry/v1/Entry.js';
export type { SVIDClient, SVIDHandlers } from './gen/spire/api/server/svid/v1/SVID.js';
export type { BundleClient, BundleHandlers } from './gen/spire/api/server/bundle/v1/Bundle.js';
export type {
  LocalAuthorityClient,
  LocalAuthorityHandlers,
} from './gen/spire/api/server/localauthority/v1/LocalAuthority.js';
export type { LoggerClient, LoggerHandlers } from './gen/spire/api/server/logger/v1/Logger.js';

/** The options the generated types in ./gen were produced with; the two must agree. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** Entry points, relative to the proto root; imports are resolved from there. */
export const protoFiles = [
  'workload.proto',
  'grpc/health/v1/health.proto',
  'spire/api/server/agent/v1/agent.proto',
  'spire/api/server/entry/v1/entry.proto',
  'spire/api/server/svid/v1/svid.proto',
  'spire/api/server/bundle/v1/bundle.proto',
  'spire/api/server/localauthority/v1/localauthority.proto',
  'spire/api/server/logger/v1/logger.proto',
] as const;

/**
 * The .proto files are not copied into dist/, so both the source module and the
 * compiled one find them from the package root.
 */
function findProtoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'identity-core', 'proto');
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const protoRoot = findProtoRoot();

export const packageDefinition: protoLoader.PackageDefinition = protoLoader.loadSync([...protoFiles], {
  ...protoLoaderOptions,
  includeDirs: [protoRoot],
});

type AllProtos = WorkloadProto &
  HealthProto &
  AgentProto &
  EntryProto &
  SvidProto &
  BundleProto &
  LocalAuthorityProto &
  LoggerProto;

const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as AllProtos;
const spire = loaded.spire.api.server;

// Client constructors end in Ctor where the bare name is taken by the client type
// they build; the *Handlers types are what a server implements for each service.

/** SPIFFE Workload API ("SpiffeWorkloadAPI", no package). */
export const WorkloadClient = loaded.SpiffeWorkloadAPI;
export const workloadService = WorkloadClient.service;

/** grpc.health.v1.Health */
export const HealthClientCtor = loaded.grpc.health.v1.Health;
export const healthService = HealthClientCtor.service;

/** spire.api.server.agent.v1.Agent */
export const AgentClientCtor = spire.agent.v1.Agent;
export const agentService = AgentClientCtor.service;

/** spire.api.server.entry.v1.Entry */
export const EntryClientCtor = spire.entry.v1.Entry;
export const entryService = EntryClientCtor.service;

/** spire.api.server.svid.v1.SVID */
export const SvidClientCtor = spire.svid.v1.SVID;
export const svidService = SvidClientCtor.service;

/** spire.api.server.bundle.v1.Bundle */
export const BundleClientCtor = spire.bundle.v1.Bundle;
export const bundleService = BundleClientCtor.service;

/** spire.api.server.localauthority.v1.LocalAuthority */
export const LocalAuthorityClientCtor = spire.localauthority.v1.LocalAuthority;
export const localAuthorityService = LocalAuthorityClientCtor.service;

/** spire.api.server.logger.v1.Logger */
export const LoggerClientCtor = spire.logger.v1.Logger;
export const loggerService = LoggerClientCtor.service;

/** Metadata every Workload API call must carry, or the agent answers InvalidArgument. */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';

export function workloadMetadata(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(WORKLOAD_API_HEADER, 'true');
  return metadata;
}
