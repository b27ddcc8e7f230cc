// Browser transports: Connect / gRPC-Web over fetch (@connectrpc/connect-web). No Node APIs here.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

export interface WebConnectTransportOptions {
  /** e.g. https://prompts.example.com (the service's Connect port, behind TLS and CORS). */
  baseUrl: string;
  /** Default "connect". Browsers cannot speak plain gRPC. */
  protocol?: "connect" | "grpc-web";
  /** Transport-level interceptors (they see every attempt). */
  interceptors?: Interceptor[];
  /** JSON instead of binary protobuf on the wire. Default false. */
  useJson?: boolean;
  /** A fetch to use instead of globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
}

/** Connect or gRPC-Web over fetch; pass it to createAutoforgeClient({ transport }). */
export function connectTransport(options: WebConnectTransportOptions): Transport {
  const common = {
    baseUrl: options.baseUrl,
    interceptors: options.interceptors ?? [],
    useBinaryFormat: options.useJson !== true,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  };
  return options.protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport(common);
}
