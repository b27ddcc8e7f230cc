import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, type DescMethod, type Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextValues,
  type HandlerContext,
  type MethodImpl,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { CallPipeline, IncomingCall } from "./chain.js";
import { answerDecodeFailures, markReached } from "./connect-decode.js";
import { type CorsOptions, createCorsHandler } from "./cors.js";
import { assertResponseFits, UndecodableRequestError } from "./decode.js";
import { strictJsonDecoder } from "./decode-json.js";
import { listenTcp } from "./listen.js";
import type { RegisteredService } from "./service.js";

/** A one-slot push/pull channel: `send` resolves when the consumer has taken the message (backpressure). */
function createChannel<T>() {
  const items: { value: T; taken: () => void }[] = [];
  let wake: (() => void) | undefined;
  let ended: { error?: unknown } | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    send(value: T): Promise<void> {
      return new Promise((taken) => {
        items.push({ value, taken });
        notify();
      });
    },
    end(error?: unknown) {
      ended = error === undefined ? {} : { error };
      notify();
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<T> {
      for (;;) {
        const item = items.shift();
        if (item !== undefined) {
          item.taken();
          yield item.value;
          continue;
        }
        if (ended !== undefined) {
          if ("error" in ended) throw ended.error;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

/** Whether the call's messages are JSON (Connect, gRPC-Web and gRPC all say so in the content type). */
function usesJson(ctx: HandlerContext): boolean {
  if (ctx.requestMethod === "GET") return new URL(ctx.url).searchParams.get("encoding") === "json";
  return /[/+]json\b/.test(ctx.requestHeader.get("content-type") ?? "");
}

function incomingCall(
  service: RegisteredService<unknown>,
  method: RegisteredService<unknown>["methods"][number],
  request: Message,
  ctx: HandlerContext,
  deliver: (m: Message) => Promise<void>,
  maxMessageBytes: number,
  rest?: AsyncIterable<Message>,
): IncomingCall {
  markReached(ctx);
  const json = usesJson(ctx);
  // Checked here, inside the chain, so a response over the limit is logged and counted with the
  // RESOURCE_EXHAUSTED the caller gets (connect-node's own writeMaxBytes check runs after the chain).
  const send = (m: Message) => {
    assertResponseFits(method.output, m, json, maxMessageBytes);
    return deliver(m);
  };
  return {
    service,
    method,
    protocol: ctx.protocolName,
    requestHeaders: ctx.requestHeader,
    timeoutMs: ctx.timeoutMs(),
    transportSignal: ctx.signal,
    request,
    rest,
    send,
    setResponseHeader: (name, value) => ctx.responseHeader.set(name, value),
  };
}

/**
 * A message of a client stream that connect-node could not decode: it reports INTERNAL / UNKNOWN (`parse
 * binary: ...`) from the request iterator, after the implementation was reached, so `answerDecodeFailures`
 * does not see it. The client's fault, INVALID_ARGUMENT, as on the gRPC port. Other codes (a message over the
 * size limit: RESOURCE_EXHAUSTED; a cancel) pass as they are.
 */
function decodeFailureOf(e: unknown): unknown {
  if (e instanceof ConnectError && (e.code === Code.Internal || e.code === Code.Unknown)) {
    return new UndecodableRequestError(e.rawMessage);
  }
  return e;
}

async function* decodedRest(iterator: AsyncIterator<Message>, signal: AbortSignal): AsyncGenerator<Message> {
  for (;;) {
    let next: IteratorResult<Message>;
    try {
      next = await iterator.next();
    } catch (e) {
      throw decodeFailureOf(e);
    }
    if (next.done === true) {
      // as on the gRPC port: a cancelled request body can end before its abort is reported
      await new Promise((resolve) => setImmediate(resolve));
      if (signal.aborted) throw new ConnectError("the client cancelled the call", Code.Canceled);
      return;
    }
    yield next.value;
  }
}

/** connect-es implementations that hand every call to the same pipeline as the gRPC port. */
function implementation(
  service: RegisteredService<unknown>,
  pipeline: CallPipeline,
  maxMessageBytes: number,
): Record<string, unknown> {
  const impl: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "unary") {
      impl[method.localName] = async (request: Message, ctx: HandlerContext) => {
        let response: Message | undefined;
        await pipeline(
          incomingCall(
            service,
            method,
            request,
            ctx,
            async (m) => {
              response = m;
            },
            maxMessageBytes,
          ),
        );
        return response;
      };
    } else if (method.methodKind === "client_streaming") {
      // the first message is read here: the chain resolves auth and the project on it
      impl[method.localName] = async (requests: AsyncIterable<Message>, ctx: HandlerContext) => {
        markReached(ctx);
        const iterator = requests[Symbol.asyncIterator]();
        let first: IteratorResult<Message> | undefined;
        let decodeError: UndecodableRequestError | undefined;
        try {
          first = await iterator.next();
        } catch (e) {
          const failure = decodeFailureOf(e);
          if (!(failure instanceof UndecodableRequestError)) throw failure;
          decodeError = failure;
        }
        let response: Message | undefined;
        const call = incomingCall(
          service,
          method,
          first === undefined || first.done === true ? create(method.input) : first.value,
          ctx,
          async (m) => {
            response = m;
          },
          maxMessageBytes,
          first === undefined || first.done === true ? undefined : decodedRest(iterator, ctx.signal),
        );
        // like the gRPC port's: a first message that does not decode fails in the chain (logged, counted)
        await pipeline(decodeError === undefined ? call : { ...call, decodeError });
        return response;
      };
    } else {
      impl[method.localName] = (request: Message, ctx: HandlerContext) => {
        const channel = createChannel<Message>();
        pipeline(incomingCall(service, method, request, ctx, (m) => channel.send(m), maxMessageBytes)).then(
          () => channel.end(),
          (e: unknown) => channel.end(e),
        );
        return channel;
      };
    }
  }
  return impl;
}

/**
 * connect-node reads the body with `for await`, and an early `return()` (e.g. after readMaxBytes is exceeded)
 * destroys an HTTP/1.1 request, and with it the socket: a client still uploading then sees ECONNRESET instead
 * of the RESOURCE_EXHAUSTED response. So the iterator does not destroy, and once the response is out the rest
 * of the body is read and discarded (up to a bound, then the socket is closed).
 */
function keepSocketOnEarlyResponse(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  maxMessageBytes: number,
) {
  Object.defineProperty(req, Symbol.asyncIterator, {
    value: () => req.iterator({ destroyOnReturn: false }),
  });
  res.once("finish", () => {
    if (req.complete) return;
    let discarded = 0;
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > 2 * maxMessageBytes) req.socket.destroy();
    });
    req.resume();
  });
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Strict JSON (see decode-json.ts); `textDecoder` is read by connect-node though not in its type. */
function jsonOptionsFor(method: DescMethod) {
  const options = { ignoreUnknownFields: false, textDecoder: strictJsonDecoder(method.input) };
  return options as { ignoreUnknownFields: boolean };
}

/**
 * connect-node's `connectNodeAdapter`, with every router handler wrapped by `answerDecodeFailures` and a
 * per-request context value to tell where a failure arose.
 */
function rpcAdapter(
  options: ConnectPortOptions,
  fallback: (req: NodeRequest, res: NodeResponse) => void,
): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  for (const service of options.services) {
    const impl = implementation(service, options.pipeline, options.maxMessageBytes);
    for (const method of service.methods) {
      // Built per method from the descriptor, so its type is not the MethodImpl connect-es derives.
      router.rpc(method, impl[method.localName] as MethodImpl<typeof method>, {
        jsonOptions: jsonOptionsFor(method),
      });
    }
  }
  const paths = new Map(router.handlers.map((h) => [h.requestPath, answerDecodeFailures(h)]));
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (handler === undefined) {
      fallback(req, res);
      return;
    }
    handler(universalRequestFromNodeRequest(req, res, undefined, createContextValues()))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        // The client went away (connect-node reports it as ABORTED): nothing left to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        res.destroy();
      });
  };
}

const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface ConnectPortOptions {
  readonly services: readonly RegisteredService<unknown>[];
  readonly pipeline: CallPipeline;
  readonly maxMessageBytes: number;
  /** CORS for browser clients; undefined: no CORS headers. */
  readonly cors?: CorsOptions | undefined;
  /** Extra plain-HTTP GET routes (e.g. /metrics). */
  readonly routes?: Readonly<Record<string, () => Promise<{ contentType: string; body: string }>>>;
}

export interface ConnectPort {
  listen(host: string, port: number): Promise<number>;
  /** /healthz (liveness): 200 while serving, 503 once draining. */
  setServing(serving: boolean): void;
  /** /readyz (readiness): 200 while serving and ready (the database answers), 503 otherwise. */
  setReady(ready: boolean): void;
  /** Send GOAWAY on HTTP/2, close idle HTTP/1 sockets; resolves when no request is active (still listening). */
  close(): Promise<void>;
  /** Stop listening and destroy every remaining connection. */
  forceClose(): void;
}

/**
 * The Connect port: Connect, gRPC-Web and gRPC protocols via connect-node, over HTTP/1.1 and h2c on ONE
 * listener. A plain `net.Server` sniffs the first bytes: the HTTP/2 connection preface goes to an h2c
 * server, anything else to an HTTP/1.1 server (an h2c server alone does not speak HTTP/1.1).
 */
export function createConnectPort(options: ConnectPortOptions): ConnectPort {
  let serving = false;
  let draining = false;
  let ready = false;
  const extraRoutes = options.routes ?? {};
  const adapter = rpcAdapter(options, (req, res) => {
    const path = req.url?.split("?", 1)[0] ?? "";
    if (req.method === "GET" && path === "/healthz") {
      const ok = serving && !draining;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "SERVING\n" : "NOT_SERVING\n");
      return;
    }
    if (req.method === "GET" && path === "/readyz") {
      const ok = serving && !draining && ready;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "SERVING\n" : "NOT_SERVING\n");
      return;
    }
    const route = req.method === "GET" ? extraRoutes[path] : undefined;
    if (route !== undefined) {
      route().then(
        ({ contentType, body }) => {
          res.writeHead(200, { "content-type": contentType });
          res.end(body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    res.writeHead(404);
    res.end();
  });

  const corsHandler = options.cors === undefined ? undefined : createCorsHandler(options.cors);

  // Active requests, so shutdown knows when every response has been written.
  let active = 0;
  let idleWaiters: (() => void)[] = [];
  const listener = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    active++;
    if (req instanceof http.IncomingMessage && res instanceof http.ServerResponse) {
      // Ask HTTP/1.1 clients to reconnect elsewhere once we drain.
      if (draining) res.setHeader("connection", "close");
      keepSocketOnEarlyResponse(req, res, options.maxMessageBytes);
    }
    res.once("close", () => {
      active--;
      if (active === 0) {
        for (const w of idleWaiters) w();
        idleWaiters = [];
      }
    });
    // a preflight is answered here; other requests of allowed origins get their CORS headers and go on
    if (corsHandler?.(req, res) === true) return;
    adapter(req, res);
  };

  const http1 = http.createServer(listener);
  const h2c = http2.createServer({}, listener);
  const sessions = new Set<http2.Http2Session>();
  h2c.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, http2Preface.length);
      const isH2 = head.subarray(0, n).equals(http2Preface.subarray(0, n));
      if (isH2 && head.length < http2Preface.length) return;
      socket.off("data", onData);
      socket.off("error", onError);
      socket.pause();
      socket.unshift(head);
      if (isH2) {
        // The http2 session reads what was unshifted itself; resuming here would steal its bytes.
        h2c.emit("connection", socket);
      } else {
        http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", onError);
  });

  const stopListening = () => {
    if (tcp.listening) tcp.close();
  };

  return {
    listen: (host, port) => listenTcp(tcp, host, port, "CONNECT_PORT"),
    setServing(value) {
      serving = value;
      if (!value) draining = true;
    },
    setReady(value) {
      ready = value;
    },
    close() {
      // The listener stays open until the whole server has drained (forceClose): /healthz answers 503 and
      // new calls get UNAVAILABLE from the chain instead of a refused connection.
      draining = true;
      for (const session of sessions) session.close();
      http1.closeIdleConnections();
      return active === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    forceClose() {
      stopListening();
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
