import type * as http from "node:http";
import type * as http2 from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";
import cors from "cors";

/** CORS for browser clients (connect-web, gRPC-Web) on the Connect port. */
export interface CorsOptions {
  /** Origins allowed to call (`https://app.example.com`), or `"*"` for any. */
  readonly allowedOrigins: readonly string[] | "*";
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Headers browsers may send besides connect-es's list: the bearer token, our request id, and W3C trace
 * context (browser tracing).
 */
const applicationRequestHeaders = ["Authorization", "X-Request-Id", "Traceparent", "Tracestate"];
/** Response headers scripts may read besides connect-es's list (gRPC-Web trailers, Connect errors). */
const applicationResponseHeaders = ["X-Request-Id"];

/**
 * Runs before the RPC router: answers preflight `OPTIONS` requests itself (returns true: handled) and adds
 * `Access-Control-Allow-Origin` / `-Expose-Headers` to the responses of allowed origins; an origin that is
 * not allowed gets no CORS headers, so the browser refuses the response. Built on the `cors` package with the
 * methods and headers connect-es documents for its protocols.
 */
export function createCorsHandler(options: CorsOptions): (req: NodeRequest, res: NodeResponse) => boolean {
  const middleware = cors({
    origin: options.allowedOrigins === "*" ? "*" : [...options.allowedOrigins],
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, ...applicationRequestHeaders],
    exposedHeaders: [...connectCors.exposedHeaders, ...applicationResponseHeaders],
    // browsers cache a preflight this long (seconds); Chromium caps it at 2 h
    maxAge: 7200,
  });
  return (req, res) => {
    let handled = true;
    // `cors` calls next() synchronously unless it has answered the preflight itself
    middleware(req as unknown as cors.CorsRequest, res as unknown as http.ServerResponse, () => {
      handled = false;
    });
    return handled;
  };
}
