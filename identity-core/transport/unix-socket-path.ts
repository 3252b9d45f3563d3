/** Linux's sockaddr_un holds 108 bytes, the terminating NUL included; a longer path is cut silently. */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/** Why `path` cannot be a Unix socket address, or nothing. */
export function unixSocketPathTooLong(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes <= MAX_UNIX_SOCKET_PATH_BYTES) return undefined;
  return `${path.slice(0, 60)}… is ${bytes} bytes; a Unix socket path may be at most ${MAX_UNIX_SOCKET_PATH_BYTES}`;
}
