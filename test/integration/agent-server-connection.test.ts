import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../deployment/host/free-port.js';
import { JwtSvidCache } from '../../identity-core/agent/jwt-svid-cache.js';
import { CachingJwtSvidSource } from '../../identity-core/agent/jwt-svid-source.js';
import { createSelfSignedCa } from '../../identity-core/pki/x509-ca.js';
import { ServerConnection, type ServerClients } from '../../identity-core/transport/server-connection.js';

/**
 * The agent's channel to its server after a failed call: dropped, so that the next call (a sync, once
 * the server is back) dials afresh instead of failing fast on a channel still backing off, as SPIRE's
 * agent releases its connection on any error. Seen in a drill: a JWT-SVID fetch during an outage left
 * a backing-off channel that made the first sync after healing fail and back off 7 s more.
 */
describe("the agent's server connection after a failed call", () => {
  let roots: Buffer[];
  let address: string;
  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    roots = [(await createSelfSignedCa({ trustDomain: 'example.org', privateKey, ttlSeconds: 600 })).der];
    // Nothing listens there: every call fails with UNAVAILABLE.
    address = `127.0.0.1:${await freePort()}`;
  });

  it('a failed JWT-SVID fetch drops the channel it used', async () => {
    const connection = new ServerConnection(address, 'example.org');
    const used: ServerClients[] = [];
    const source = new CachingJwtSvidSource(
      new JwtSvidCache(),
      () => {
        const clients = connection.clients(roots, undefined);
        used.push(clients);
        return clients;
      },
      connection,
      pino({ level: 'silent' }),
      () => [],
      () => {},
    );
    await expect(source.fetch('entry-1', 'spiffe://example.org/w', ['aud'])).rejects.toThrow(
      /could not fetch JWT-SVID: 14 UNAVAILABLE/,
    );
    expect(used).toHaveLength(1);
    expect(connection.clients(roots, undefined)).not.toBe(used[0]);
    connection.close();
  });

  it('a late failure on an older channel leaves the newer one alone', () => {
    const connection = new ServerConnection(address, 'example.org');
    const old = connection.clients(roots, undefined);
    expect(connection.clients(roots, undefined)).toBe(old);
    connection.reset(old);
    const current = connection.clients(roots, undefined);
    expect(current).not.toBe(old);
    connection.reset(old);
    expect(connection.clients(roots, undefined)).toBe(current);
    connection.reset();
    expect(connection.clients(roots, undefined)).not.toBe(current);
    connection.close();
  });
});
