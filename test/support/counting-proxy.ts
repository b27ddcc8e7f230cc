/**
 * A counting HTTP proxy for sqld: a `node:http` server on a free loopback port that forwards every request to
 * `target` unchanged and records it (method, path, and the SQL of a Hrana pipeline or cursor request). Point a
 * client's `url` at {@link CountingProxy.url} to count the HTTP round trips it makes; `requests` since the last
 * {@link CountingProxy.reset}.
 */
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The SQL the request carried (Hrana `execute`/`batch` steps, `sequence`), in order; empty for others. */
  sql: string[];
  /** The request's `accept-encoding` header, if any. */
  acceptEncoding: string | undefined;
}

export interface CountingProxy {
  /** `http://127.0.0.1:<port>`: a `DATABASE_URL` that reaches `target` through the proxy. */
  readonly url: string;
  /** Requests forwarded since the start or the last {@link reset}. */
  readonly requests: readonly ProxiedRequest[];
  /** Forgets the requests recorded so far. */
  reset(): void;
  close(): Promise<void>;
}

/** The SQL texts of a Hrana HTTP request body (v2/v3 pipeline, v3 cursor); unknown shapes give none. */
function sqlOf(body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const out: string[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (typeof value === "object" && value !== null) {
      for (const [key, inner] of Object.entries(value)) {
        if (key === "sql" && typeof inner === "string") out.push(inner);
        else visit(inner);
      }
    }
  };
  visit(parsed);
  return out;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  let requests: ProxiedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push({
        method: req.method ?? "",
        path: req.url ?? "",
        sql: sqlOf(body.toString("utf8")),
        acceptEncoding: req.headers["accept-encoding"],
      });
      const headers = { ...req.headers, host: upstream.host };
      const forward = httpRequest(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
        },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      forward.on("error", (err) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`proxy: ${err.message}`);
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    reset() {
      requests = [];
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
