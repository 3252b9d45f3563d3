import * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import type { AttestedNode } from '../../identity-core/datastore/records.js';
import { RpcError } from '../../identity-core/transport/rpc-error.js';

/** Attested nodes in memory, for the agent authorizer and its node cache; `down` fails every read as a stopped datastore would. */
export class FakeAttestedNodes {
  nodes = new Map<string, AttestedNode>();
  down = false;
  reads = 0;

  async get(id: string): Promise<AttestedNode | undefined> {
    this.reads++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    return this.nodes.get(id);
  }

  async list(): Promise<AttestedNode[]> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    return [...this.nodes.values()];
  }

  async updateSerials(id: string, update: Partial<AttestedNode>): Promise<void> {
    this.nodes.set(id, { ...this.nodes.get(id)!, ...update });
  }
}

/** Expects `promise` to reject with an RpcError of `code` whose message matches. */
export async function expectRpc(
  promise: Promise<unknown>,
  code: grpc.status,
  message: RegExp,
): Promise<void> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RpcError);
  expect(grpc.status[(error as RpcError).code]).toBe(grpc.status[code]);
  expect((error as RpcError).message).toMatch(message);
}
