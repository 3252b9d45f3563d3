/**
 * What both executables share: injectable output streams, a commander program that
 * speaks Go-style flags, and one place that turns failures into exit codes.
 */
import { Command, CommanderError, Option } from 'commander';
import { normalizeArgv, parseGoBool, parseGoInt, singleDashFlags } from './go-flags.js';

export interface OutputStream {
  write(chunk: string): unknown;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
}

/** A failure to report and exit with; the message is printed as the executable prints errors. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/**
 * A failure whose output was already written (e.g. "Agent is unhealthy: …"), so
 * nothing more is printed.
 */
export class SilentFailure extends Error {
  constructor(readonly exitCode = 1) {
    super('command failed');
    this.name = 'SilentFailure';
  }
}

export function createProgram(name: string, description: string, io: CliIo): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(singleDashFlags(text)),
      writeErr: (text) => io.stderr.write(singleDashFlags(text)),
    })
    .showSuggestionAfterError(true);
}

/**
 * Parses and runs; resolves to the exit code. `formatError` renders a thrown error
 * the way the real executable does ("Error: …" for spire-server, the bare message
 * for spire-agent's api commands).
 */
export async function runProgram(
  program: Command,
  argv: readonly string[],
  io: CliIo,
  formatError: (error: unknown) => string,
): Promise<number> {
  try {
    await program.parseAsync(normalizeArgv(argv, valueFlags(program)), { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof SilentFailure) return error.exitCode;
    io.stderr.write(`${formatError(error)}\n`);
    return error instanceof CommandError ? error.exitCode : 1;
  }
}

/** Names of the flags, anywhere in the command tree, that take a value (`--name <value>`). */
function valueFlags(program: Command): (name: string) => boolean {
  const names = new Set<string>();
  const visit = (command: Command) => {
    for (const option of command.options)
      if (option.required && option.long) names.add(option.long.replace(/^--/, ''));
    command.commands.forEach(visit);
  };
  visit(program);
  return (name) => names.has(name);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A repeatable string flag (Go's custom flag.Value that appends). */
export function repeatable(flags: string, description: string): Option {
  return new Option(flags, description).argParser((value: string, previous: string[] | undefined) => [
    ...(previous ?? []),
    value,
  ]);
}

/** A Go-style boolean flag: `-admin`, `-admin=true`, `-admin=false`. */
export function boolFlag(name: string, description: string): Option {
  return new Option(`--${name} [bool]`, description).argParser((value: string) => {
    const parsed = parseGoBool(value);
    if (parsed === undefined)
      throw new CommandError(`invalid boolean value ${JSON.stringify(value)} for -${name}`);
    return parsed;
  });
}

/** A Go-style integer flag, kept as text until validated so the error names the flag. */
export function intValue(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = parseGoInt(text);
  if (value === undefined)
    throw new CommandError(`invalid value ${JSON.stringify(text)} for flag -${name}: parse error`);
  return value;
}

/** An int32 field of the API, as SPIRE checks before sending. */
export function int32Value(name: string, text: string | undefined, fallback: number): number {
  const value = intValue(name, text, fallback);
  if (value < -(2 ** 31) || value > 2 ** 31 - 1) {
    throw new CommandError(`invalid value for ${name}: ${value} is out of range for int32`);
  }
  return value;
}
