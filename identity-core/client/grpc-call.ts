/** Calling the server and agent APIs from a command: targets, promises, and errors printed as Go prints them. */
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';

/** A grpc-js target for a Unix socket; relative paths are taken from the working directory, as SPIRE does. */
export function unixTarget(socketPath: string): string {
  return `unix:${resolve(socketPath)}`;
}

/** Go's names for status codes (codes.Code String()), as they appear in SPIRE's CLI output. */
const GO_CODE_NAMES: Record<number, string> = {
  [grpc.status.OK]: 'OK',
  [grpc.status.CANCELLED]: 'Canceled',
  [grpc.status.UNKNOWN]: 'Unknown',
  [grpc.status.INVALID_ARGUMENT]: 'InvalidArgument',
  [grpc.status.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [grpc.status.NOT_FOUND]: 'NotFound',
  [grpc.status.ALREADY_EXISTS]: 'AlreadyExists',
  [grpc.status.PERMISSION_DENIED]: 'PermissionDenied',
  [grpc.status.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [grpc.status.FAILED_PRECONDITION]: 'FailedPrecondition',
  [grpc.status.ABORTED]: 'Aborted',
  [grpc.status.OUT_OF_RANGE]: 'OutOfRange',
  [grpc.status.UNIMPLEMENTED]: 'Unimplemented',
  [grpc.status.INTERNAL]: 'Internal',
  [grpc.status.UNAVAILABLE]: 'Unavailable',
  [grpc.status.DATA_LOSS]: 'DataLoss',
  [grpc.status.UNAUTHENTICATED]: 'Unauthenticated',
};

export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? `Code(${code})`;
}

/** A failed call, whose message reads like grpc-go's: "rpc error: code = NotFound desc = entry not found". */
export class RpcCallError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`rpc error: code = ${goCodeName(code)} desc = ${details}`);
    this.name = 'RpcCallError';
  }
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number';
}

export function toRpcCallError(error: unknown): unknown {
  return isServiceError(error) ? new RpcCallError(error.code, error.details) : error;
}

type Callback<Response> = (error: grpc.ServiceError | null, response?: Response) => void;

/** Runs one unary call: `unary<Entry__Output>((done) => client.GetEntry(request, done))`. */
export function unary<Response>(start: (done: Callback<Response>) => unknown): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    start((error, response) => {
      if (error) reject(toRpcCallError(error));
      else if (response === undefined) reject(new Error('empty response'));
      else resolvePromise(response);
    });
  });
}

/** The first message of a server stream, then the stream is cancelled (what `fetch` commands need). */
export function firstMessage<Response>(stream: grpc.ClientReadableStream<Response>): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    stream.once('data', (message: Response) => {
      settled = true;
      resolvePromise(message);
      stream.cancel();
    });
    stream.on('error', (error) => {
      if (!settled) reject(toRpcCallError(error));
    });
    stream.once('end', () => {
      if (!settled) reject(new Error('stream ended without a message'));
    });
  });
}

/** Seconds → a call deadline. */
export function deadlineIn(seconds: number): grpc.Deadline {
  return new Date(Date.now() + seconds * 1000);
}
