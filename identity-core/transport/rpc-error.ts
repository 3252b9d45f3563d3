import * as grpc from '@grpc/grpc-js';

/** An error that carries the gRPC status a handler must answer with. */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }

  static invalidArgument = (message: string) => new RpcError(grpc.status.INVALID_ARGUMENT, message);
  static permissionDenied = (message: string) => new RpcError(grpc.status.PERMISSION_DENIED, message);
  static unauthenticated = (message: string) => new RpcError(grpc.status.UNAUTHENTICATED, message);
  static notFound = (message: string) => new RpcError(grpc.status.NOT_FOUND, message);
  static alreadyExists = (message: string) => new RpcError(grpc.status.ALREADY_EXISTS, message);
  static failedPrecondition = (message: string) => new RpcError(grpc.status.FAILED_PRECONDITION, message);
  static internal = (message: string) => new RpcError(grpc.status.INTERNAL, message);
  static unavailable = (message: string) => new RpcError(grpc.status.UNAVAILABLE, message);
}

/** Turns anything thrown into a status: RpcErrors keep theirs, anything else is Internal with its message. */
export function toServiceError(error: unknown): Partial<grpc.ServiceError> {
  if (error instanceof RpcError) return { code: error.code, details: error.message, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: grpc.status.INTERNAL, details: message, message };
}

export function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}
