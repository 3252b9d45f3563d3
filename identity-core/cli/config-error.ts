/** One problem found in a config file; `path` is the dotted HCL key path, empty for the file as a whole. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** Longer lines are cut: a config value can be megabytes, and the error is read in a terminal. */
const MAX_ISSUE_LENGTH = 300;

function cut(message: string): string {
  if (message.length <= MAX_ISSUE_LENGTH) return message;
  return `${message.slice(0, MAX_ISSUE_LENGTH)}… (${message.length - MAX_ISSUE_LENGTH} more characters)`;
}

/**
 * Everything wrong with one config file. The message has one line per issue, each
 * naming the file, the key and the reason: `server.conf: server.ca_ttl: invalid duration "1x"`.
 */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      issues
        .map((issue) => cut(`${file}: ${issue.path ? `${issue.path}: ` : ''}${issue.message}`))
        .join('\n'),
    );
    this.name = 'ConfigError';
  }
}
