/** One problem found in a config file; `path` is the dotted HCL key path, empty for the file as a whole. */
export interface ConfigIssue {
  path: string;
  message: string;
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
      issues.map((issue) => `${file}: ${issue.path ? `${issue.path}: ` : ''}${issue.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}
