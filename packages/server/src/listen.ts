import type * as net from "node:net";

/**
 * Pending connections the kernel queues for each port until the process accepts them (capped by
 * net.core.somaxconn, 4096 on current kernels). Node's default is 511: when 2,000 clients connect at once while
 * the event loop is busy, the queue overflows, the kernel drops their SYNs, and each such client waits for its
 * TCP retransmit (1 s, then 3 s, ...) before its first call even starts — the seconds-long first windows of the
 * 2,000-connection load runs (test/load/README.md; `nstat TcpExtListenDrops` counted them).
 */
export const LISTEN_BACKLOG = 4096;

/** The port of `variable` cannot be bound (in use, or not allowed): main.ts prints it as one line. */
export class ListenError extends Error {
  constructor(
    /** The configuration variable that chose the port (`GRPC_PORT`, `CONNECT_PORT`). */
    readonly variable: string,
    readonly host: string,
    readonly port: number,
    /** The system error code: EADDRINUSE, EACCES, EADDRNOTAVAIL, ... */
    readonly code: string,
  ) {
    const why =
      code === "EADDRINUSE"
        ? "is already in use (another instance running?)"
        : code === "EACCES"
          ? "may not be bound by this user"
          : code === "EADDRNOTAVAIL"
            ? "names an address this machine does not have (HOST)"
            : `cannot be bound (${code})`;
    super(`${host}:${port} ${why}; set ${variable} to another port`);
    this.name = "ListenError";
  }
}

/**
 * Listens on host:port with LISTEN_BACKLOG; resolves with the bound port (port 0: the one the OS chose). A port
 * that cannot be bound rejects with a ListenError naming `variable`.
 */
export function listenTcp(server: net.Server, host: string, port: number, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(
        typeof e.code === "string" && e.syscall === "listen"
          ? new ListenError(variable, host, port, e.code)
          : e,
      );
    server.once("error", onError);
    server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}
