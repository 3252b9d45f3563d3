/**
 * Zod building blocks shared by the server and agent config schemas: HCL value
 * shapes as SPIRE accepts them (ports may be quoted, durations are Go strings)
 * and the sections both files have (telemetry, health_checks).
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A strict object: SPIRE refuses unknown configuration, and so do we. */
export function section<Shape extends z.ZodRawShape>(shape: Shape, unknownKeyMessage = 'unknown key') {
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeyMessage : undefined),
  });
}

export const text = z.string({ error: 'expected a string' });

export const nonEmptyText = text.min(1, { error: 'must not be empty' });

/** Go-style duration string → seconds. */
export const duration = z
  .string({ error: 'expected a duration string such as "1h30m"' })
  .transform((value, ctx) => {
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      ctx.issues.push({ code: 'custom', message: `invalid duration ${JSON.stringify(value)}`, input: value });
      return z.NEVER;
    }
    return seconds;
  });

export const positiveDuration = duration.refine((seconds) => seconds > 0, {
  error: 'must be greater than zero',
});

/** HCL v1 decoding lets SPIRE configs write ports as numbers or as strings ("8081"). */
export const port = z
  .union([z.number(), z.string()], { error: 'expected a port number' })
  .transform((value, ctx) => {
    const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535) {
      ctx.issues.push({
        code: 'custom',
        message: `invalid port ${JSON.stringify(value)} (must be 0-65535)`,
        input: value,
      });
      return z.NEVER;
    }
    return n;
  });

export const flag = z
  .union([z.boolean(), z.enum(['true', 'false'])], { error: 'expected true or false' })
  .transform((value) => value === true || value === 'true');

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const LOG_LEVELS: Record<string, LogLevel> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  panic: 'fatal',
};

/** SPIRE's logrus level names, any case → the matching pino level. */
export const logLevel = text.transform((value, ctx) => {
  const level = LOG_LEVELS[value.toLowerCase()];
  if (!level) {
    ctx.issues.push({
      code: 'custom',
      message: `invalid log level ${JSON.stringify(value)} (expected DEBUG, INFO, WARN or ERROR)`,
      input: value,
    });
    return z.NEVER;
  }
  return level;
});

const TRUST_DOMAIN_NAME = /^[a-z0-9._-]+$/;

/** A trust domain name; "spiffe://example.org" is accepted too, as SPIRE does. */
export const trustDomain = text.transform((value, ctx) => {
  const name = value.startsWith('spiffe://') ? value.slice('spiffe://'.length) : value;
  let reason: string | undefined;
  if (name === '') reason = 'trust domain is missing';
  else if (!TRUST_DOMAIN_NAME.test(name))
    reason =
      'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
  else if (name.length > 255) reason = 'trust domain is longer than 255 characters';
  if (reason) {
    ctx.issues.push({
      code: 'custom',
      message: `invalid trust domain ${JSON.stringify(value)}: ${reason}`,
      input: value,
    });
    return z.NEVER;
  }
  return name;
});

/** `plugin_data {}`: a plugin that takes no settings. */
export const emptyPluginData = section({}).default({});

/** One implementation chosen for a plugin type, with its parsed block. */
export type PluginChoice<Options extends Record<string, z.ZodType>> = {
  [Name in keyof Options & string]: { name: Name; block: z.output<Options[Name]> };
}[keyof Options & string];

/**
 * A plugin type block such as `KeyManager "disk" { ... }`: exactly one of the named
 * implementations, whose block is then validated by that implementation's schema.
 */
export function pluginChoice<Options extends Record<string, z.ZodType>>(kind: string, options: Options) {
  const supported = Object.keys(options).join(', ');
  return z
    .record(z.string(), z.unknown(), { error: `expected a block such as ${kind} "name" { plugin_data { } }` })
    .transform((value, ctx): PluginChoice<Options> => {
      const names = Object.keys(value);
      const unsupported = names.filter((name) => !Object.hasOwn(options, name));
      for (const name of unsupported) {
        ctx.issues.push({
          code: 'custom',
          path: [name],
          message: `unsupported ${kind} plugin (supported: ${supported})`,
          input: value[name],
        });
      }
      const name = names[0];
      if (unsupported.length > 0 || names.length !== 1 || name === undefined) {
        if (unsupported.length === 0) {
          ctx.issues.push({
            code: 'custom',
            message: `exactly one ${kind} plugin must be configured, found ${names.length}`,
            input: value,
          });
        }
        return z.NEVER;
      }
      const parsed = (options[name] as z.ZodType).safeParse(value[name]);
      if (!parsed.success) {
        // Re-rooted under the plugin's name. Unknown keys become one custom issue each,
        // because an unrecognized_keys issue would not stop the enclosing transforms.
        for (const issue of parsed.error.issues) {
          const path = [name, ...issue.path];
          if (issue.code === 'unrecognized_keys') {
            for (const key of issue.keys) {
              ctx.issues.push({
                code: 'custom',
                path: [...path, key],
                message: issue.message,
                input: undefined,
              });
            }
          } else {
            ctx.issues.push({ ...issue, path, input: undefined } as z.core.$ZodRawIssue);
          }
        }
        return z.NEVER;
      }
      return { name, block: parsed.data } as PluginChoice<Options>;
    });
}

export interface PrometheusConfig {
  host: string;
  port: number;
}

export interface TelemetryConfig {
  prometheus?: PrometheusConfig;
}

export const telemetry = section({
  Prometheus: section({ host: text.default('localhost'), port }).optional(),
})
  .prefault({})
  .transform((value): TelemetryConfig => (value.Prometheus ? { prometheus: value.Prometheus } : {}));

export interface HealthChecksConfig {
  listenerEnabled: boolean;
  bindAddress: string;
  bindPort: number;
  livePath: string;
  readyPath: string;
}

/** Defaults as SPIRE's health listener applies them. */
export const healthChecks = section({
  listener_enabled: flag.default(false),
  bind_address: text.default('localhost'),
  bind_port: port.default(80),
  live_path: text.default('/live'),
  ready_path: text.default('/ready'),
})
  .prefault({})
  .transform((value): HealthChecksConfig => ({
    listenerEnabled: value.listener_enabled,
    bindAddress: value.bind_address,
    bindPort: value.bind_port,
    livePath: value.live_path,
    readyPath: value.ready_path,
  }));
