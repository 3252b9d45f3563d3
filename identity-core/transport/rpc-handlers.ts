import * as grpc from '@grpc/grpc-js';
import { toServiceError, statusName } from './rpc-error.js';

export interface RpcObserver {
  /** Called once per finished call with its status name and duration. */
  (service: string, method: string, status: string, seconds: number, error?: unknown): void;
}

/** Wraps an async unary handler: one place maps errors to statuses and records every call. */
export function unary<Req, Res>(
  service: string,
  method: string,
  observe: RpcObserver,
  handler: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    handler(call.request, call).then(
      (response) => {
        observe(service, method, 'OK', (performance.now() - started) / 1000);
        callback(null, response);
      },
      (error: unknown) => {
        const serviceError = toServiceError(error);
        observe(
          service,
          method,
          statusName(serviceError.code ?? grpc.status.UNKNOWN),
          (performance.now() - started) / 1000,
          error,
        );
        callback(serviceError as grpc.ServiceError);
      },
    );
  };
}

/** Server-streaming counterpart of `unary`: the handler writes and resolves when the stream should end. */
export function serverStream<Req, Res>(
  service: string,
  method: string,
  observe: RpcObserver,
  handler: (call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = performance.now();
    handler(call).then(
      () => {
        observe(service, method, 'OK', (performance.now() - started) / 1000);
        if (!call.writableEnded) call.end();
      },
      (error: unknown) => {
        const serviceError = toServiceError(error);
        observe(
          service,
          method,
          statusName(serviceError.code ?? grpc.status.UNKNOWN),
          (performance.now() - started) / 1000,
          error,
        );
        // grpc-js turns an 'error' event on a server stream into the call's status.
        if (!call.cancelled && !call.writableEnded)
          call.emit('error', Object.assign(new Error(serviceError.details), serviceError));
      },
    );
  };
}

/**
 * Bidirectional counterpart of `serverStream`: the handler reads and writes the call and resolves when
 * the exchange is over; a rejection becomes the call's status.
 */
export function bidiStream<Req, Res>(
  service: string,
  method: string,
  observe: RpcObserver,
  handler: (call: grpc.ServerDuplexStream<Req, Res>) => Promise<void>,
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    const started = performance.now();
    handler(call).then(
      () => {
        observe(service, method, 'OK', (performance.now() - started) / 1000);
        if (!call.writableEnded) call.end();
      },
      (error: unknown) => {
        const serviceError = toServiceError(error);
        observe(
          service,
          method,
          statusName(serviceError.code ?? grpc.status.UNKNOWN),
          (performance.now() - started) / 1000,
          error,
        );
        if (!call.cancelled && !call.writableEnded)
          call.emit('error', Object.assign(new Error(serviceError.details), serviceError));
      },
    );
  };
}

/**
 * Registers the handlers a service implements; grpc-js answers Unimplemented for the methods left
 * out, as a SPIRE server does for APIs it does not serve.
 */
export function addImplementedMethods<Handlers extends object>(
  server: grpc.Server,
  definition: grpc.ServiceDefinition,
  handlers: Partial<Handlers>,
): void {
  server.addService(definition, handlers as grpc.UntypedServiceImplementation);
}
