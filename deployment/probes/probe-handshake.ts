/**
 * The probes' mTLS handshake, both ends. Each side presents an X509-SVID (chain and key) and verifies
 * the other's chain against its own X.509 bundle with OpenSSL, expiry included, as any TLS workload
 * would; the client also wants the server's URI SAN to be the peer it dialled, the server wants the
 * client to be a workload of its trust domain.
 *
 * In TLS 1.3 the client finishes its half of the handshake before the server has judged the client
 * certificate, and Node's server drops a client it refuses without saying why. So the server answers
 * one line once it has judged the client, `accepted` or `refused: <reason>`, and the client counts a
 * handshake as done only on `accepted`: a success means both sides accepted each other, and a
 * refusal carries its reason into the samples.
 */
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';

const ACCEPTED = 'accepted';
const REFUSED = 'refused: ';
const DEFAULT_TIMEOUT_MS = 3000;

export interface SvidCredentials {
  /** Leaf first, then intermediates, as PEM. */
  chainPem: string;
  /** PKCS#8 private key, as PEM. */
  keyPem: string;
}

export interface HandshakeRequest extends SvidCredentials {
  /** Root certificates (PEM, one text or one per certificate) the server's chain must verify against. */
  bundle: string | string[];
  host?: string;
  port: number;
  /** The SPIFFE ID the server's leaf must carry as its URI SAN. */
  expectedPeerId: string;
  timeoutMs?: number;
}

export interface HandshakeResult {
  ok: boolean;
  latencyMs: number;
  error?: string;
  /** Who said no: the server ('peer') or we ('self'); absent when nobody judged (unreachable, timeout). */
  refusedBy?: 'peer' | 'self';
}

/** OpenSSL's verification code (CERT_HAS_EXPIRED) as words, code kept for searching. */
function verifyErrorText(code: unknown): string {
  const text = String(code instanceof Error ? code.message : code);
  return /^[A-Z_]+$/.test(text) ? `${text.toLowerCase().replaceAll('_', ' ')} (${text})` : text;
}

function uriSans(certificate: X509Certificate): string[] {
  return (certificate.subjectAltName ?? '')
    .split(', ')
    .filter((name) => name.startsWith('URI:'))
    .map((name) => name.slice(4));
}

/** Why a leaf is not an SVID for `accept`, or undefined when it is. */
function leafProblem(leaf: X509Certificate | undefined, accept: (id: string) => boolean): string | undefined {
  if (!leaf) return 'presented no certificate';
  if (leaf.ca) return 'presented a CA certificate as its leaf';
  const uris = uriSans(leaf);
  if (uris.length !== 1) return `presented a leaf with ${uris.length} URI SANs, not one SPIFFE ID`;
  if (!accept(uris[0]!)) return `is ${uris[0]}`;
  return undefined;
}

/** One mTLS handshake with a probe (or any server speaking this file's confirmation), never throws. */
export function handshake(request: HandshakeRequest): Promise<HandshakeResult> {
  const started = performance.now();
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const host = request.host ?? '127.0.0.1';
  return new Promise<HandshakeResult>((resolve) => {
    let settled = false;
    let secured = false;
    const finish = (outcome: Omit<HandshakeResult, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...outcome, latencyMs: Math.round((performance.now() - started) * 10) / 10 });
    };
    const socket = tls.connect({
      host,
      port: request.port,
      cert: request.chainPem,
      key: request.keyPem,
      ca: request.bundle,
      // The chain is judged below, where a refusal can be told apart from an unreachable peer.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(
      () => finish({ ok: false, error: `no answer from ${host}:${request.port} within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      secured = true;
      if (!socket.authorized) {
        const reason = verifyErrorText(socket.authorizationError);
        finish({ ok: false, refusedBy: 'self', error: `server certificate rejected: ${reason}` });
        return;
      }
      const problem = leafProblem(socket.getPeerX509Certificate(), (id) => id === request.expectedPeerId);
      if (problem)
        finish({
          ok: false,
          refusedBy: 'self',
          error: `server is not ${request.expectedPeerId}: it ${problem}`,
        });
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
      const line = answer.split('\n', 2);
      if (line.length < 2) return;
      if (line[0] === ACCEPTED) finish({ ok: true });
      else if (line[0]!.startsWith(REFUSED))
        finish({
          ok: false,
          refusedBy: 'peer',
          error: `refused by the server: ${line[0]!.slice(REFUSED.length)}`,
        });
      else finish({ ok: false, error: `unexpected answer from the server: ${JSON.stringify(line[0])}` });
    });
    socket.once('end', () =>
      finish(
        secured
          ? { ok: false, refusedBy: 'peer', error: 'the server closed the connection without accepting us' }
          : { ok: false, error: 'the server closed the connection before the TLS handshake' },
      ),
    );
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // A TLS alert is the server's verdict on our certificate; anything else is the network.
      const alert = /alert/i.test(error.message) || /ALERT/.test(error.code ?? '');
      if (alert) finish({ ok: false, refusedBy: 'peer', error: `refused by the server: ${error.message}` });
      else if (secured)
        finish({ ok: false, refusedBy: 'peer', error: `the server dropped us: ${error.message}` });
      else finish({ ok: false, error: error.message });
    });
    socket.once('close', () =>
      finish({ ok: false, error: 'the connection closed before the handshake completed' }),
    );
  });
}

/**
 * The server end: mTLS on a loopback port with the probe's current SVID, accepting clients whose chain
 * verifies against its current bundle and whose SPIFFE ID is in `trustDomain`. Until it has an SVID it
 * drops connections, as a workload without identity cannot serve.
 */
export class HandshakeServer {
  private readonly server: tls.Server;
  private credentials = false;

  constructor(private readonly trustDomain: string) {
    // Clients are judged in 'secureConnection', where the refusal can be told to them.
    this.server = tls.createServer({ requestCert: true, rejectUnauthorized: false });
    this.server.on('connection', (raw) => {
      if (!this.credentials) raw.destroy();
    });
    this.server.on('secureConnection', (socket) => {
      socket.on('error', () => undefined);
      const inDomain = (id: string) => id.startsWith(`spiffe://${this.trustDomain}/`);
      const leaf = socket.authorized ? leafProblem(socket.getPeerX509Certificate(), inDomain) : undefined;
      const problem = !socket.authorized
        ? `client certificate rejected: ${verifyErrorText(socket.authorizationError)}`
        : leaf && `client is not a workload of ${this.trustDomain}: it ${leaf}`;
      socket.end(problem ? `${REFUSED}${problem}\n` : `${ACCEPTED}\n`);
    });
    // A client that broke off its handshake: nothing to tell it, but nothing to crash over either.
    this.server.on('tlsClientError', () => undefined);
  }

  /** Serve with this SVID and trust this bundle from the next connection on. */
  update(credentials: SvidCredentials & { bundle: string | string[] }): void {
    this.server.setSecureContext({
      cert: credentials.chainPem,
      key: credentials.keyPem,
      ca: credentials.bundle,
    });
    this.credentials = true;
  }

  listen(port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
