/**
 * The server side of x509pop node attestation, as SPIRE's x509pop server plugin in its default
 * `external_pki` mode: the agent's certificate must chain to the configured CA bundle, the agent
 * proves it holds the key by answering a challenge, and the agent ID comes from the agent path
 * template (by default `/x509pop/<fingerprint>` under /spire/agent). The result can re-attest.
 */
import { X509Certificate } from 'node:crypto';
import { findPath, parseCertificates, timeProblem } from '../spiffe/certificate-path.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import {
  decodeAttestationData,
  decodeResponse,
  encodeChallenge,
  fingerprint,
  generateChallenge,
  serialNumberHex,
  verifyResponse,
  X509POP,
  X509PopError,
} from '../pki/x509pop.js';
import { RpcError } from '../transport/rpc-error.js';

export const DEFAULT_AGENT_PATH_TEMPLATE = '/{{ .PluginName }}/{{ .Fingerprint }}';

export interface X509PopSettings {
  /** DER of the CA certificates agents' certificates must chain to. */
  caBundle: Buffer[];
  agentPathTemplate: string;
}

export interface NodeAttestationResult {
  agentId: string;
  selectors: { type: string; value: string }[];
  canReattest: boolean;
}

/** What a template may name: the subset of SPIRE's template data that `external_pki` mode fills in. */
type TemplateField = 'PluginName' | 'Fingerprint' | 'SerialNumberHex' | 'TrustDomain' | 'Subject.CommonName';
const TEMPLATE_FIELDS: readonly string[] = [
  'PluginName',
  'Fingerprint',
  'SerialNumberHex',
  'TrustDomain',
  'Subject.CommonName',
];
const ACTION = /\{\{-?\s*(.*?)\s*-?\}\}/g;

/** Checks an agent_path_template; returns why it cannot be used, or undefined. */
export function agentPathTemplateProblem(template: string): string | undefined {
  for (const [, action] of template.matchAll(ACTION)) {
    const field = action!.startsWith('.') ? action!.slice(1) : undefined;
    if (field === undefined || !TEMPLATE_FIELDS.includes(field))
      return `unsupported action "{{ ${action} }}" (supported: ${TEMPLATE_FIELDS.map((f) => `.${f}`).join(', ')})`;
  }
  if (template.replace(ACTION, '').includes('{{')) return 'unterminated action';
  return undefined;
}

function commonName(cert: X509Certificate): string {
  const line = cert.subject.split('\n').find((part) => part.startsWith('CN='));
  return line === undefined ? '' : line.slice(3);
}

function renderAgentPath(template: string, values: Record<TemplateField, string>): string {
  return template.replace(ACTION, (_, action: string) => values[action.slice(1) as TemplateField]);
}

const pluginError = (make: (message: string) => RpcError, message: string) =>
  make(`nodeattestor(${X509POP}): ${message}`);

/**
 * Attests one agent. `challenge` sends a challenge on the AttestAgent stream and resolves with the
 * agent's answer.
 */
export async function attestX509Pop(
  settings: X509PopSettings,
  trustDomain: string,
  payload: Buffer,
  challenge: (challenge: Buffer) => Promise<Buffer>,
  now = Date.now(),
): Promise<NodeAttestationResult> {
  let chain: Buffer[];
  try {
    chain = decodeAttestationData(payload);
  } catch (error) {
    throw pluginError(
      RpcError.invalidArgument,
      `failed to ${(error as Error).message.replace(/^unable to /, '')}`,
    );
  }
  if (chain.length === 0) throw pluginError(RpcError.invalidArgument, 'no certificate to attest');
  let parsed;
  try {
    parsed = parseCertificates(chain);
  } catch (error) {
    throw pluginError(
      RpcError.invalidArgument,
      `unable to parse leaf certificate: ${(error as Error).message}`,
    );
  }
  const [leaf, ...intermediates] = parsed as [(typeof parsed)[number], ...typeof parsed];
  const roots = parseCertificates(settings.caBundle);
  const expired = timeProblem(leaf, now, 'certificate');
  const path = expired ? undefined : findPath([leaf], intermediates, roots, now);
  if (!path?.found) {
    const reason =
      expired ??
      `certificate signed by unknown authority${path?.hint ? ` (possibly because ${path.hint})` : ''}`;
    throw pluginError(RpcError.permissionDenied, `certificate verification failed: x509: ${reason}`);
  }

  let issued;
  try {
    issued = generateChallenge(leaf.der);
  } catch (error) {
    throw pluginError(RpcError.internal, `unable to generate challenge: ${(error as Error).message}`);
  }
  const answer = await challenge(encodeChallenge(issued));
  try {
    verifyResponse(leaf.cert.publicKey, issued, decodeResponse(answer, issued.kind));
  } catch (error) {
    if (error instanceof X509PopError && /unmarshal/.test(error.message))
      throw pluginError(RpcError.invalidArgument, error.message);
    throw pluginError(
      RpcError.permissionDenied,
      `challenge response verification failed: ${(error as Error).message}`,
    );
  }

  const cn = commonName(leaf.cert);
  const serial = serialNumberHex(leaf.der);
  const agentPath = renderAgentPath(settings.agentPathTemplate, {
    PluginName: X509POP,
    Fingerprint: fingerprint(leaf.der),
    SerialNumberHex: serial,
    TrustDomain: trustDomain,
    'Subject.CommonName': cn,
  });
  let agentId: string;
  try {
    if (!agentPath.startsWith('/')) throw new Error('path must have a leading slash');
    agentId = SpiffeId.fromParts(trustDomain, `/spire/agent${agentPath}`).toString();
  } catch (error) {
    throw pluginError(
      RpcError.internal,
      `failed to make spiffe id: invalid agent path suffix "${agentPath}": ${(error as Error).message}`,
    );
  }

  const values: string[] = [];
  if (cn !== '') values.push(`subject:cn:${cn}`);
  for (const ca of path.path.slice(1)) values.push(`ca:fingerprint:${fingerprint(ca.der)}`);
  values.push(`serialnumber:${serial}`);
  return {
    agentId,
    selectors: values.map((value) => ({ type: X509POP, value })),
    canReattest: true,
  };
}
