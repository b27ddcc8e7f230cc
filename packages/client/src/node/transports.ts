import * as http from "node:http";
import * as https from "node:https";
import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { createGrpcJsTransport, type GrpcJsTransportOptions } from "./grpc-transport.js";

/** A Transport that owns connections: `close()` ends them (in-flight calls fail). */
export interface NodeTransport extends Transport {
  close(): void;
}

export interface NodeConnectTransportOptions {
  /** e.g. http://127.0.0.1:8081 (a service's Connect port) or https://prompts.example.com. */
  baseUrl: string;
  /** Default "connect". "grpc" is gRPC over HTTP/2 by connect-node (see grpcTransport for grpc-js). */
  protocol?: "connect" | "grpc-web" | "grpc";
  /** Connect and gRPC-Web: default "1.1" (keep-alive connections); "2" multiplexes calls on one connection. */
  httpVersion?: "1.1" | "2";
  /** Transport-level interceptors (they see every attempt; the client's own run before them). */
  interceptors?: Interceptor[];
  /** Response size limit (bytes). Default 4 MiB, as the servers' and gRPC's. */
  readMaxBytes?: number;
  /** JSON instead of binary protobuf on the wire (Connect, gRPC-Web). Default false. */
  useJson?: boolean;
}

const defaultReadMaxBytes = 4 * 1024 * 1024;

/** Connect, gRPC-Web or gRPC over connect-node (`@connectrpc/connect-node`). */
export function connectTransport(options: NodeConnectTransportOptions): NodeTransport {
  const protocol = options.protocol ?? "connect";
  const common = {
    baseUrl: options.baseUrl,
    interceptors: options.interceptors ?? [],
    readMaxBytes: options.readMaxBytes ?? defaultReadMaxBytes,
  };
  const httpVersion = protocol === "grpc" ? "2" : (options.httpVersion ?? "1.1");
  if (httpVersion === "2") {
    const sessionManager = new Http2SessionManager(options.baseUrl);
    const h2 = { ...common, httpVersion: "2" as const, sessionManager };
    const transport =
      protocol === "grpc"
        ? createGrpcTransport(h2)
        : protocol === "grpc-web"
          ? createGrpcWebTransport({ ...h2, useBinaryFormat: options.useJson !== true })
          : createConnectTransport({ ...h2, useBinaryFormat: options.useJson !== true });
    return { ...bind(transport), close: () => sessionManager.abort() };
  }
  const agent = options.baseUrl.startsWith("https:")
    ? new https.Agent({ keepAlive: true })
    : new http.Agent({ keepAlive: true });
  const h1 = {
    ...common,
    httpVersion: "1.1" as const,
    nodeOptions: { agent },
    useBinaryFormat: options.useJson !== true,
  };
  const transport = protocol === "grpc-web" ? createGrpcWebTransport(h1) : createConnectTransport(h1);
  return { ...bind(transport), close: () => agent.destroy() };
}

/** gRPC over `@grpc/grpc-js` (the fastest client in Node: stack.md): {@link createGrpcJsTransport}. */
export function grpcTransport(options: GrpcJsTransportOptions): NodeTransport {
  return createGrpcJsTransport(options);
}

function bind(transport: Transport): Transport {
  return { unary: transport.unary.bind(transport), stream: transport.stream.bind(transport) };
}
