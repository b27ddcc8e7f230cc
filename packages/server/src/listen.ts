import type * as net from "node:net";

/**
 * Pending connections the kernel queues for each port until the process accepts them (capped by
 * net.core.somaxconn, 4096 on current kernels). Node's default is 511: when 2,000 clients connect at once while
 * the event loop is busy, the queue overflows, the kernel drops their SYNs, and each such client waits for its
 * TCP retransmit (1 s, then 3 s, ...) before its first call even starts — the seconds-long first windows of the
 * 2,000-connection load runs (test/load/README.md; `nstat TcpExtListenDrops` counted them).
 */
export const LISTEN_BACKLOG = 4096;

/** Listens on host:port with LISTEN_BACKLOG; resolves with the bound port (port 0: the one the OS chose). */
export function listenTcp(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}
