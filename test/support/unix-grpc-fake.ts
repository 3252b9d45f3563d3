import * as grpc from '@grpc/grpc-js';

/** A stand-in gRPC server on a Unix socket, for tests of clients: subclasses add their services. */
export class UnixGrpcFake {
  protected readonly server = new grpc.Server();

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
