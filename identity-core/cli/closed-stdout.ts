/**
 * `tspire-server … | head -1`: once the reader has what it wants it closes the pipe, and the next
 * write fails with EPIPE, which Node raises as an unhandled 'error' event and a stack trace. A Go
 * CLI just stops there; so do we, quietly and successfully, as the output nobody reads is not a failure.
 */
export function exitQuietlyWhenStdoutCloses(stdout: NodeJS.WriteStream): void {
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
