import { describe, expect, it } from 'vitest';
import { normalizeArgv, parseGoBool, parseGoInt, singleDashFlags } from '../../identity-core/cli/go-flags.js';
import { main as serverMain } from '../../identity-core/cli/server-cli.js';
import { main as agentMain } from '../../identity-core/cli/agent-cli.js';

function capture() {
  const chunks: string[] = [];
  return { write: (chunk: string) => chunks.push(chunk), text: () => chunks.join('') };
}

describe('normalizeArgv', () => {
  it('turns single-dash long flags into double-dash ones', () => {
    expect(
      normalizeArgv([
        'entry',
        'create',
        '-spiffeID',
        'spiffe://td/w',
        '-selector=unix:uid:0',
        '-x509SVIDTTL',
        '60',
      ]),
    ).toEqual([
      'entry',
      'create',
      '--spiffeID',
      'spiffe://td/w',
      '--selector=unix:uid:0',
      '--x509SVIDTTL',
      '60',
    ]);
  });

  it('leaves short flags, double-dash flags, values and negative numbers alone', () => {
    expect(normalizeArgv(['-h', '--socketPath', '/s', '-ttl', '-5', 'value', '-', '-1x'])).toEqual([
      '-h',
      '--socketPath',
      '/s',
      '--ttl',
      '-5',
      'value',
      '-',
      '-1x',
    ]);
  });

  it('stops rewriting after --', () => {
    expect(normalizeArgv(['-config', 'a', '--', '-notAFlag'])).toEqual(['--config', 'a', '--', '-notAFlag']);
  });

  it('keeps "=" values intact, even with dashes and equals signs inside', () => {
    expect(normalizeArgv(['-hint=-a=b'])).toEqual(['--hint=-a=b']);
    // As Go's flag package: the argument after a value flag is its value, dash or not.
    const takesValue = (name: string) => ['authorityID', 'socketPath'].includes(name);
    expect(normalizeArgv(['-authorityID', '-x1', '-socketPath', '/s', '-downstream'], takesValue)).toEqual([
      '--authorityID',
      '-x1',
      '--socketPath',
      '/s',
      '--downstream',
    ]);
    expect(normalizeArgv(['--authorityID', '-socketPath', '-socketPath', '/s'], takesValue)).toEqual([
      '--authorityID',
      '-socketPath',
      '--socketPath',
      '/s',
    ]);
  });
});

describe('Go flag values', () => {
  it.each([
    ['true', true],
    ['1', true],
    ['T', true],
    ['False', false],
    ['0', false],
    ['yes', undefined],
    ['', undefined],
  ])('parseGoBool(%j) → %s', (text, value) => {
    expect(parseGoBool(text)).toBe(value);
  });

  it.each([
    ['600', 600],
    ['-1', -1],
    ['+7', 7],
    ['1.5', undefined],
    ['1e3', undefined],
    ['ten', undefined],
    ['99999999999999999999', undefined],
  ])('parseGoInt(%j) → %s', (text, value) => {
    expect(parseGoInt(text)).toBe(value);
  });

  it('shows flags with one dash in help and errors', () => {
    expect(singleDashFlags("error: unknown option '--spiffeID'\n  --socketPath <path>  -h, --help")).toBe(
      "error: unknown option '-spiffeID'\n  -socketPath <path>  -h, -help",
    );
  });
});

describe('flag validation without a server', () => {
  // Nothing listens on this path: a command that reached the network would fail differently.
  const socket = ['-socketPath', '/nonexistent/tspire-test.sock'];

  it.each([
    [
      ['entry', 'create', '-spiffeID', 'spiffe://example.org/w', '-parentID', 'spiffe://example.org/a'],
      'Error: at least one selector is required',
    ],
    [
      ['entry', 'create', '-spiffeID', 'spiffe://example.org/w', '-selector', 'unix:uid:0'],
      'Error: a parent ID is required if the node flag is not set',
    ],
    [
      ['entry', 'create', '-parentID', 'spiffe://example.org/a', '-selector', 'unix:uid:0'],
      'Error: a SPIFFE ID is required',
    ],
    [
      [
        'entry',
        'create',
        '-spiffeID',
        'spiffe://example.org/w',
        '-parentID',
        'spiffe://example.org/a',
        '-selector',
        'uid',
      ],
      'Error: selector "uid" must be formatted as type:value',
    ],
    [
      [
        'entry',
        'create',
        '-spiffeID',
        'spiffe://example.org/w',
        '-parentID',
        'spiffe://example.org/a',
        '-selector',
        'unix:uid:0',
        '-x509SVIDTTL',
        'hour',
      ],
      'Error: invalid value "hour" for flag -x509SVIDTTL: parse error',
    ],
    [
      [
        'entry',
        'create',
        '-spiffeID',
        'spiffe://example.org/w',
        '-parentID',
        'spiffe://example.org/a',
        '-selector',
        'unix:uid:0',
        '-jwtSVIDTTL',
        '-5',
      ],
      'Error: a positive JWT-SVID TTL is required',
    ],
    [['entry', 'delete'], 'Error: an entry ID is required'],
    [
      ['entry', 'show', '-entryID', 'x', '-spiffeID', 'spiffe://example.org/w'],
      "Error: the -entryID flag can't be combined with others",
    ],
    [['agent', 'ban'], 'Error: a SPIFFE ID is required'],
    [['token', 'generate', '-ttl', '10m'], 'Error: invalid value "10m" for flag -ttl: parse error'],
    [['bundle', 'show', '-format', 'der'], 'Error: invalid format: "der"'],
    [['localauthority', 'x509', 'taint'], 'Error: an authority ID is required'],
    [
      ['upstreamauthority', 'revoke'],
      'Error: the Subject Key ID of the X.509 upstream authority is required',
    ],
  ])('tspire-server %j', async (argv, message) => {
    const stdout = capture();
    const stderr = capture();
    const code = await serverMain([...argv, ...socket], { stdout, stderr });
    expect(code).toBe(1);
    expect(stderr.text()).toBe(`${message}\n`);
    expect(stdout.text()).toBe('');
  });

  it('rejects a malformed SPIFFE ID before calling the server', async () => {
    const stderr = capture();
    const code = await serverMain(
      [
        'entry',
        'create',
        '-spiffeID',
        'http://example.org/w',
        '-parentID',
        'spiffe://example.org/a',
        '-selector',
        'a:b',
        ...socket,
      ],
      { stdout: capture(), stderr },
    );
    expect(code).toBe(1);
    expect(stderr.text()).toMatch(/^Error: .*scheme/i);
  });

  it('reports unknown flags the way they were typed', async () => {
    const stderr = capture();
    const code = await serverMain(['entry', 'show', '-bogus'], { stdout: capture(), stderr });
    expect(code).toBe(1);
    expect(stderr.text()).toContain("unknown option '-bogus'");
  });

  it.each([
    [['api', 'fetch', 'jwt'], 'audience must be specified'],
    [['api', 'validate', 'jwt', '-audience', 'a'], 'svid must be specified'],
    [['api', 'fetch', 'x509', '-timeout', 'soon'], 'invalid value "soon" for flag -timeout: parse error'],
  ])('tspire-agent %j', async (argv, message) => {
    const stderr = capture();
    const code = await agentMain([...argv, ...socket], { stdout: capture(), stderr });
    expect(code).toBe(1);
    expect(stderr.text()).toBe(`${message}\n`);
  });

  it('prints help and exits 0', async () => {
    const stdout = capture();
    const code = await serverMain(['entry', 'create', '-h'], { stdout, stderr: capture() });
    expect(code).toBe(0);
    expect(stdout.text()).toContain('-spiffeID <id>');
    expect(stdout.text()).not.toContain('--spiffeID');
  });
});
