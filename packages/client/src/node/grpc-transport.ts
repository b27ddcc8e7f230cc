import {
  create,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  decodeBinaryHeader,
  encodeBinaryHeader,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";

/**
 * A connect-es {@link Transport} over an `@grpc/grpc-js` client: service-to-service calls keep connect's typed
 * clients and `ConnectError`s, and pay grpc-js's cost per call instead of connect-node's (stack.md measured
 * ~0.5 ms of CPU per call on the connect-node side; under load the evaluation-service profile showed connect's
 * client at ~10 % of CreateEvaluation, constructing a ConnectError and aborting a signal on every successful call).
 *
 * Unary and server-streaming methods (what the services call); client and bidi streams are refused. gRPC status
 * codes and connect codes share their numbers; status details become the error message, trailers its metadata,
 * and a `grpc-status-details-bin` trailer (google.rpc.Status) its `details` (read them with
 * `ConnectError.findDetails`), as connect's own gRPC transport does. Binary (`-bin`) metadata travels as
 * base64 header values both ways, as in connect.
 */
export interface GrpcJsTransport extends Transport {
  close(): void;
}

export interface GrpcJsTransportOptions {
  /** host:port, or a URL such as http://127.0.0.1:50051 (h2c) or https://prompts.example.com (TLS). */
  address: string;
  maxReceiveMessageBytes?: number;
  /** Default: TLS with the system roots for an `https://` address, plaintext (h2c) otherwise. */
  credentials?: grpc.ChannelCredentials;
  /** Further grpc-js channel options (`grpc.keepalive_time_ms`, ...). */
  channelOptions?: grpc.ChannelOptions;
}

export function createGrpcJsTransport(options: GrpcJsTransportOptions): GrpcJsTransport {
  const target = options.address.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  const credentials =
    options.credentials ??
    (/^https:\/\//.test(options.address) ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
  const client = new grpc.Client(target, credentials, {
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    ...options.channelOptions,
  });

  function callOptions(timeoutMs: number | undefined): grpc.CallOptions {
    return timeoutMs === undefined || timeoutMs <= 0 ? {} : { deadline: Date.now() + timeoutMs };
  }

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const requestHeader = new Headers(header);
      return new Promise((resolve, reject) => {
        if (signal?.aborted) {
          reject(abortError(signal));
          return;
        }
        let responseHeader = new Headers();
        let outcome: { err: grpc.ServiceError | null; message: MessageShape<O> | undefined } | undefined;
        const call = client.makeUnaryRequest(
          path(method),
          (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
          (b: Buffer) => fromBinary(method.output, b),
          create(method.input, input),
          metadataOf(requestHeader),
          callOptions(timeoutMs),
          (err: grpc.ServiceError | null, message?: MessageShape<O>) => {
            // grpc-js calls back, then emits "status" (which carries the trailers): settle there.
            outcome = { err, message };
          },
        );
        call.on("metadata", (md: grpc.Metadata) => {
          responseHeader = headersOf(md);
        });
        call.on("status", (status: grpc.StatusObject) => {
          signal?.removeEventListener("abort", onAbort);
          if (outcome === undefined) {
            reject(connectErrorOf(status));
          } else if (outcome.err) {
            reject(connectErrorOf(outcome.err));
          } else {
            resolve({
              stream: false,
              service: method.parent,
              method,
              header: responseHeader,
              message: outcome.message as MessageShape<O>,
              trailer: headersOf(status.metadata),
            });
          }
        });
        const onAbort = () => call.cancel();
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(
          `${method.methodKind} calls are not supported by this transport`,
          Code.Unimplemented,
        );
      }
      if (signal?.aborted) throw abortError(signal);
      let request: MessageInitShape<I> | undefined;
      for await (const m of input) request = m;
      const call = client.makeServerStreamRequest(
        path(method),
        (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
        (b: Buffer) => fromBinary(method.output, b),
        create(method.input, request),
        metadataOf(new Headers(header)),
        callOptions(timeoutMs),
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      const responseHeader = new Headers();
      call.on("metadata", (md: grpc.Metadata) => {
        for (const [key, value] of headersOf(md)) responseHeader.append(key, value);
      });
      const trailer = new Headers();
      call.on("status", (status: grpc.StatusObject) => {
        for (const [key, value] of headersOf(status.metadata)) trailer.append(key, value);
      });
      async function* messages(): AsyncIterable<MessageShape<O>> {
        try {
          for await (const message of call) yield message as MessageShape<O>;
        } catch (err) {
          throw connectErrorOf(err);
        } finally {
          signal?.removeEventListener("abort", onAbort);
          call.cancel();
        }
      }
      return {
        stream: true,
        service: method.parent,
        method,
        header: responseHeader,
        message: messages(),
        trailer,
      };
    },

    close() {
      client.close();
    },
  };
}

function path(method: { parent: { typeName: string }; name: string }): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function metadataOf(headers: Headers): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [key, value] of headers) {
    if (key.endsWith("-bin")) {
      // Headers join repeated values with ", "; each is base64 on its own.
      for (const part of value.split(/,\s*/)) md.add(key, Buffer.from(decodeBinaryHeader(part)));
    } else {
      md.set(key, value);
    }
  }
  return md;
}

function headersOf(md: grpc.Metadata | undefined): Headers {
  const headers = new Headers();
  if (md === undefined) return headers;
  for (const [key, values] of Object.entries(md.getMap())) {
    headers.set(key, typeof values === "string" ? values : encodeBinaryHeader(values));
  }
  return headers;
}

const statusDetailsBin = "grpc-status-details-bin";

function connectErrorOf(err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== "number") return err;
  const code = e.code === grpc.status.OK ? Code.Unknown : (e.code as number as Code);
  const metadata = headersOf(e.metadata);
  if (metadata.has(statusDetailsBin)) {
    // google.rpc.Status with the error details: decoded as connect's gRPC transport does.
    const withStatus = new Headers(metadata);
    withStatus.set("grpc-status", String(code));
    withStatus.set("grpc-message", encodeURIComponent(e.details ?? ""));
    try {
      const decoded = findTrailerError(withStatus);
      if (decoded !== undefined) {
        const error = new ConnectError(decoded.rawMessage, code, metadata);
        error.details = decoded.details;
        return error;
      }
    } catch {
      // an undecodable status: keep the plain code and message below
    }
  }
  return new ConnectError(e.details ?? e.message ?? "", code, metadata);
}

function abortError(signal: AbortSignal): ConnectError {
  return new ConnectError(
    signal.reason instanceof Error ? signal.reason.message : "the operation was aborted",
    Code.Canceled,
  );
}
