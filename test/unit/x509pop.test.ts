import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509popAttestor } from '../../identity-core/agent/node-attestation.js';
import {
  calculateResponse,
  decodeAttestationData,
  decodeChallenge,
  decodeResponse,
  encodeAttestationData,
  encodeChallenge,
  encodeResponse,
  fingerprint,
  generateChallenge,
  serialNumberHex,
  verifyResponse,
} from '../../identity-core/pki/x509pop.js';
import { parsePemCertificates } from '../../identity-core/spiffe/pem.js';
import {
  agentPathTemplateProblem,
  attestX509Pop,
  DEFAULT_AGENT_PATH_TEMPLATE,
} from '../../identity-core/server/x509pop-attestor.js';
import { NodeCertificateAuthority } from '../../deployment/stack/node-certificates.js';

let dir: string;
let ca: NodeCertificateAuthority;
let leafDer: Buffer;
let caDer: Buffer;
let files: { certificatePath: string; privateKeyPath: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'x509pop-'));
  ca = new NodeCertificateAuthority(dir);
  files = await ca.ensureNode('node-a', dir);
  leafDer = parsePemCertificates(readFileSync(files.certificatePath))[0]!;
  caDer = parsePemCertificates(readFileSync(ca.bundlePath))[0]!;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = () => ({ caBundle: [caDer], agentPathTemplate: DEFAULT_AGENT_PATH_TEMPLATE });

describe('x509pop wire formats (SPIRE pkg/common/plugin/x509pop, Go encoding/json)', () => {
  it('carries the certificate chain as base64 DER under "certificates"', () => {
    const payload = encodeAttestationData([leafDer, caDer]);
    expect(JSON.parse(payload.toString())).toEqual({
      certificates: [leafDer.toString('base64'), caDer.toString('base64')],
    });
    expect(decodeAttestationData(payload)).toEqual([leafDer, caDer]);
    expect(() => decodeAttestationData(Buffer.from('{"certificates":[1]}'))).toThrow(/not base64/);
    expect(() => decodeAttestationData(Buffer.from('not json'))).toThrow(/unable to unmarshal data/);
  });

  it('issues a 32-byte nonce challenge of the key type, with the other kind null', () => {
    const challenge = generateChallenge(leafDer);
    expect(challenge.kind).toBe('ecdsa');
    expect(challenge.nonce).toHaveLength(32);
    const json = JSON.parse(encodeChallenge(challenge).toString()) as Record<string, unknown>;
    expect(json).toEqual({
      rsa_signature: null,
      ecdsa_signature: { nonce: challenge.nonce.toString('base64') },
    });
    expect(decodeChallenge(encodeChallenge(challenge))).toEqual([challenge]);
  });

  it('refuses a certificate whose key is not meant for signatures', () => {
    // The CA certificate has keyCertSign and cRLSign only.
    expect(() => generateChallenge(caDer)).toThrow('certificate not intended for digital signature use');
  });

  it('answers an ECDSA challenge with nonce, r and s that verify, and refuses tampering', () => {
    const key = createPrivateKey(readFileSync(files.privateKeyPath));
    const publicKey = new X509Certificate(leafDer).publicKey;
    const challenge = generateChallenge(leafDer);
    const response = decodeResponse(encodeResponse(calculateResponse(key, [challenge])), 'ecdsa')!;
    const json = JSON.parse(encodeResponse(response).toString()) as {
      ecdsa_signature: Record<string, string>;
    };
    expect(Object.keys(json.ecdsa_signature).sort()).toEqual(['nonce', 'r', 's']);
    expect(response.nonce).toHaveLength(32);
    expect(() => verifyResponse(publicKey, challenge, response)).not.toThrow();
    const otherChallenge = { ...challenge, nonce: Buffer.alloc(32, 7) };
    expect(() => verifyResponse(publicKey, otherChallenge, response)).toThrow(
      'ECDSA signature verify failed',
    );
    expect(() => verifyResponse(publicKey, challenge, { ...response, nonce: Buffer.alloc(31) })).toThrow(
      'invalid response nonce',
    );
    expect(() => verifyResponse(publicKey, challenge, undefined)).toThrow('expecting ECDSA response');
  });

  it('answers an RSA challenge with an RSA-PSS signature that verifies', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const challenge = { kind: 'rsa' as const, nonce: Buffer.alloc(32, 1) };
    const response = decodeResponse(encodeResponse(calculateResponse(privateKey, [challenge])), 'rsa')!;
    expect(response.signature).toHaveLength(256);
    expect(() => verifyResponse(publicKey, challenge, response)).not.toThrow();
    expect(() =>
      verifyResponse(publicKey, challenge, { ...response, signature: Buffer.alloc(256, 1) }),
    ).toThrow('RSA signature verify failed');
    expect(() => calculateResponse(privateKey, [{ kind: 'ecdsa', nonce: Buffer.alloc(32) }])).toThrow(
      'expecting RSA challenge',
    );
  });

  it('fingerprints as SHA-1 of the DER in lowercase hex, and writes serials in even-length hex', () => {
    const cert = new X509Certificate(leafDer);
    expect(fingerprint(leafDer)).toBe(cert.fingerprint.replaceAll(':', '').toLowerCase());
    const serial = serialNumberHex(leafDer);
    expect(serial.length % 2).toBe(0);
    expect(BigInt(`0x${serial}`)).toBe(BigInt(`0x${cert.serialNumber}`));
  });
});

describe('x509pop attestation on the server', () => {
  const answerWith = (attestor: Awaited<ReturnType<typeof x509popAttestor>>) => async (challenge: Buffer) =>
    attestor.answer(challenge);

  it('attests a node holding a certificate of the CA bundle as /spire/agent/x509pop/<fingerprint>', async () => {
    const attestor = await x509popAttestor(files);
    const result = await attestX509Pop(settings(), 'example.org', attestor.payload, answerWith(attestor));
    expect(result.agentId).toBe(`spiffe://example.org/spire/agent/x509pop/${fingerprint(leafDer)}`);
    expect(result.canReattest).toBe(true);
    expect(result.selectors).toEqual([
      { type: 'x509pop', value: 'subject:cn:node-a' },
      { type: 'x509pop', value: `ca:fingerprint:${fingerprint(caDer)}` },
      { type: 'x509pop', value: `serialnumber:${serialNumberHex(leafDer)}` },
    ]);
    // The same certificate again: the same agent ID, which is what lets the agent re-attest.
    const again = await attestX509Pop(settings(), 'example.org', attestor.payload, answerWith(attestor));
    expect(again.agentId).toBe(result.agentId);
  });

  it('follows an agent_path_template', async () => {
    const attestor = await x509popAttestor(files);
    const result = await attestX509Pop(
      { caBundle: [caDer], agentPathTemplate: '/x509pop/cn/{{ .Subject.CommonName }}' },
      'example.org',
      attestor.payload,
      answerWith(attestor),
    );
    expect(result.agentId).toBe('spiffe://example.org/spire/agent/x509pop/cn/node-a');
    expect(agentPathTemplateProblem('/{{ .PluginName }}/{{ .Fingerprint }}')).toBeUndefined();
    expect(agentPathTemplateProblem('/{{ .URISanSelectors }}')).toMatch(/unsupported action/);
    expect(agentPathTemplateProblem('/{{ .Fingerprint ')).toBe('unterminated action');
  });

  it('refuses a certificate of another CA before any challenge, with PermissionDenied', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'x509pop-other-'));
    try {
      const stranger = await x509popAttestor(
        await new NodeCertificateAuthority(otherDir).ensureNode('x', otherDir),
      );
      let challenged = false;
      const attempt = attestX509Pop(settings(), 'example.org', stranger.payload, async (c) => {
        challenged = true;
        return stranger.answer(c);
      });
      await expect(attempt).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        message: expect.stringMatching(
          /^nodeattestor\(x509pop\): certificate verification failed: x509: certificate signed by unknown authority/,
        ),
      });
      expect(challenged).toBe(false);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('refuses an answer signed with another key, and a malformed payload', async () => {
    const attestor = await x509popAttestor(files);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expect(
      attestX509Pop(settings(), 'example.org', attestor.payload, async (challenge) =>
        encodeResponse(calculateResponse(privateKey, decodeChallenge(challenge))),
      ),
    ).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      message: 'nodeattestor(x509pop): challenge response verification failed: ECDSA signature verify failed',
    });
    await expect(
      attestX509Pop(settings(), 'example.org', Buffer.from('{"certificates":[]}'), answerWith(attestor)),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      message: 'nodeattestor(x509pop): no certificate to attest',
    });
  });

  it("refuses an agent key that does not match its certificate (SPIRE's unable to load keypair)", async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'x509pop-key-'));
    try {
      const other = await ca.ensureNode('node-b', otherDir);
      await expect(
        x509popAttestor({ certificatePath: files.certificatePath, privateKeyPath: other.privateKeyPath }),
      ).rejects.toThrow(/^unable to load keypair: private key does not match public key/);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});
