/**
 * Reads SPIRE-style HCL config files for tspire-server and tspire-agent: decode the
 * HCL, collapse its blocks into plain objects, apply command-line overrides, then
 * validate strictly. Every failure is one ConfigError naming the file and keys.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { agentConfigSchema, type AgentConfig } from '../agent/agent-config.js';
import { serverConfigSchema, serverConfigWarnings, type ServerConfig } from '../server/server-config.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { hclStructureIssues } from './hcl-structure.js';

interface HclParser {
  parse(text: string): string;
}

let parser: HclParser | undefined;

/**
 * js-hcl-parser is Go's HCL compiled to JavaScript. It answers with a JSON string,
 * or with an error sentence instead of throwing. Loading it sets
 * Error.stackTraceLimit to Infinity for the whole process, so that is undone.
 */
function hclParser(): HclParser {
  if (!parser) {
    const limit = Error.stackTraceLimit;
    parser = createRequire(import.meta.url)('js-hcl-parser') as HclParser;
    Error.stackTraceLimit = limit;
  }
  return parser;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * HCL's JSON form wraps every block in a list (`server { }` → `"server": [{...}]`,
 * `KeyManager "disk" { }` → `"KeyManager": [{"disk": [{...}]}]`). Lists made only of
 * objects are blocks and are merged into one object; a key defined twice is an error.
 */
function collapseBlocks(value: Json, path: string[], issues: ConfigIssue[]): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || !value.every(isObject))
      return value.map((item) => collapseBlocks(item, path, issues));
    const merged: Record<string, unknown> = {};
    for (const block of value as { [key: string]: Json }[]) {
      for (const [key, item] of Object.entries(block)) {
        if (key in merged) issues.push({ path: [...path, key].join('.'), message: 'defined more than once' });
        else merged[key] = collapseBlocks(item, [...path, key], issues);
      }
    }
    return merged;
  }
  if (isObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, collapseBlocks(item, [...path, key], issues)]),
    );
  }
  return value;
}

/** SPIRE's configs are kilobytes; the HCL decoder takes seconds a megabyte. */
const MAX_CONFIG_LENGTH = 1024 * 1024;

/** Decodes HCL v1 text to a plain object tree; syntax errors name the line and column. */
export function decodeHcl(text: string, file: string): Record<string, unknown> {
  if (text.length > MAX_CONFIG_LENGTH) {
    const size = `${(text.length / 1024 / 1024).toFixed(1)} MiB`;
    throw new ConfigError(file, [{ path: '', message: `is ${size}; a config file may be at most 1 MiB` }]);
  }
  const structural = hclStructureIssues(text);
  if (structural.length > 0) throw new ConfigError(file, structural);
  const output = hclParser().parse(text);
  let decoded: Json;
  try {
    decoded = JSON.parse(output) as Json;
  } catch {
    const reason = output.replace(/^unable to parse JSON: /, '');
    const position = /^At (\d+):(\d+): (.*)$/s.exec(reason);
    const message = position
      ? `HCL syntax error at line ${position[1]}, column ${position[2]}: ${position[3]}`
      : `HCL syntax error: ${reason}`;
    throw new ConfigError(file, [{ path: '', message }]);
  }
  const issues: ConfigIssue[] = [];
  const collapsed = collapseBlocks(decoded, [], issues);
  if (issues.length > 0) throw new ConfigError(file, issues);
  if (!isObject(collapsed))
    throw new ConfigError(file, [{ path: '', message: 'expected a configuration document' }]);
  return collapsed;
}

/** Go's os.ExpandEnv, as SPIRE's -expandEnv applies it: `$NAME` and `${NAME}`, unset → empty. */
export function expandEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_match, braced?: string, bare?: string) => {
    return env[braced ?? bare ?? ''] ?? '';
  });
}

/** The `tspire-server run` flags that override server.conf, as SPIRE's run command allows. */
export interface ServerOverrides {
  bindAddress?: string;
  serverPort?: number;
  socketPath?: string;
  trustDomain?: string;
  dataDir?: string;
  logLevel?: string;
}

/** The `tspire-agent run` flags that override agent.conf, as SPIRE's run command allows. */
export interface AgentOverrides {
  joinToken?: string;
  serverAddress?: string;
  serverPort?: number;
  socketPath?: string;
  trustDomain?: string;
  trustBundle?: string;
  insecureBootstrap?: boolean;
  dataDir?: string;
  logLevel?: string;
}

const SERVER_OVERRIDE_KEYS: Record<keyof ServerOverrides, string> = {
  bindAddress: 'bind_address',
  serverPort: 'bind_port',
  socketPath: 'socket_path',
  trustDomain: 'trust_domain',
  dataDir: 'data_dir',
  logLevel: 'log_level',
};

const AGENT_OVERRIDE_KEYS: Record<keyof AgentOverrides, string> = {
  joinToken: 'join_token',
  serverAddress: 'server_address',
  serverPort: 'server_port',
  socketPath: 'socket_path',
  trustDomain: 'trust_domain',
  trustBundle: 'trust_bundle_path',
  insecureBootstrap: 'insecure_bootstrap',
  dataDir: 'data_dir',
  logLevel: 'log_level',
};

/** Command-line values win over the file, as in SPIRE; unset flags leave the file alone. */
function applyOverrides(
  document: Record<string, unknown>,
  sectionName: string,
  overrides: Record<string, unknown>,
  keys: Record<string, string>,
): void {
  const entries = Object.entries(overrides).filter(([, value]) => value !== undefined);
  if (entries.length === 0) return;
  const current = document[sectionName];
  const target = isObject(current) ? current : {};
  if (current === undefined) document[sectionName] = target;
  for (const [name, value] of entries) {
    const key = keys[name];
    if (key) target[key] = value;
  }
}

function valueAt(document: unknown, path: PropertyKey[]): unknown {
  let current = document;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** zod issues → one ConfigIssue per offending key, worded for someone editing the file. */
function toConfigIssues(error: z.ZodError, document: Record<string, unknown>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ path: [...path, key].join('.'), message: issue.message });
      continue;
    }
    let message = issue.message;
    const missing = valueAt(document, issue.path) === undefined;
    if (missing && ['invalid_type', 'invalid_union', 'invalid_value'].includes(issue.code)) {
      message = 'must be configured';
    } else if (issue.code === 'invalid_type' && issue.expected === 'object') {
      message = 'expected a block';
    }
    issues.push({ path: path.join('.'), message });
  }
  return issues;
}

export interface LoadedConfig<Config> {
  config: Config;
  /** Accepted but worth telling the operator (SPIRE logs these at startup). */
  warnings: string[];
}

export interface LoadOptions<Overrides> {
  overrides?: Overrides;
  /** Substitute $VARIABLES before parsing (SPIRE's -expandEnv). */
  expandEnv?: boolean;
  env?: NodeJS.ProcessEnv;
}

function prepare<Overrides extends object>(
  text: string,
  file: string,
  sectionName: string,
  keys: Record<string, string>,
  options: LoadOptions<Overrides>,
): Record<string, unknown> {
  const source = options.expandEnv ? expandEnv(text, options.env) : text;
  const document = decodeHcl(source, file);
  applyOverrides(document, sectionName, { ...options.overrides }, keys);
  return document;
}

export function parseServerConfig(
  text: string,
  file: string,
  options: LoadOptions<ServerOverrides> = {},
): LoadedConfig<ServerConfig> {
  const document = prepare(text, file, 'server', SERVER_OVERRIDE_KEYS, options);
  const result = serverConfigSchema.safeParse(document);
  if (!result.success) throw new ConfigError(file, toConfigIssues(result.error, document));
  return { config: result.data, warnings: serverConfigWarnings(result.data) };
}

export function parseAgentConfig(
  text: string,
  file: string,
  options: LoadOptions<AgentOverrides> = {},
): LoadedConfig<AgentConfig> {
  const document = prepare(text, file, 'agent', AGENT_OVERRIDE_KEYS, options);
  const result = agentConfigSchema.safeParse(document);
  if (!result.success) throw new ConfigError(file, toConfigIssues(result.error, document));
  return { config: result.data, warnings: [] };
}

async function readConfigFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `could not find config file ${resolve(file)}: please use the -config flag`
        : `unable to read configuration: ${(error as Error).message}`;
    throw new ConfigError(file, [{ path: '', message }]);
  }
}

export async function loadServerConfig(
  file: string,
  options: LoadOptions<ServerOverrides> = {},
): Promise<LoadedConfig<ServerConfig>> {
  return parseServerConfig(await readConfigFile(file), file, options);
}

export async function loadAgentConfig(
  file: string,
  options: LoadOptions<AgentOverrides> = {},
): Promise<LoadedConfig<AgentConfig>> {
  return parseAgentConfig(await readConfigFile(file), file, options);
}
