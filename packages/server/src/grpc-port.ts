import * as net from "node:net";
import { file_google_rpc_error_details } from "@autoforge/contracts/google/rpc/error_details";
import {
  create,
  type DescFile,
  type DescService,
  fromBinary,
  type Message,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import {
  HealthImplementation,
  service as healthServiceDefinition,
  type ServingStatus,
} from "grpc-health-check";
import type { CallPipeline, IncomingCall } from "./chain.js";
import { decodeBinaryRequest, encodeBinaryResponse, UndecodableRequestError } from "./decode.js";
import { grpcStatusDetails } from "./error-details.js";
import { mapError } from "./errors.js";
import { listenTcp } from "./listen.js";
import type { RegisteredService } from "./service.js";

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A grpc-js ServiceDefinition built from a protobuf-es descriptor: protobuf-es messages on both sides,
 * `toBinary`/`fromBinary` as the serializers. Servers register it; clients use it with
 * `grpc.makeGenericClientConstructor`.
 */
export function createGrpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (m) => asBuffer(toBinary(method.input, m)),
      requestDeserialize: (b) => fromBinary(method.input, b),
      responseSerialize: (m) => asBuffer(toBinary(method.output, m)),
      responseDeserialize: (b) => fromBinary(method.output, b),
      originalName: method.localName,
    };
  }
  return definition;
}

const passThrough = (b: Buffer) => b;

/**
 * What the server registers: bytes in and out. Requests are decoded in the handler, so a request that does
 * not decode is INVALID_ARGUMENT from the chain (logged, counted), not the INTERNAL grpc-js answers when
 * `requestDeserialize` throws; responses are encoded there too, so one over the send limit fails in the chain
 * with the RESOURCE_EXHAUSTED the caller gets.
 */
function serverServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
      originalName: method.localName,
    };
  }
  return definition;
}

function decodeRequest(method: DescService["methods"][number], bytes: Buffer) {
  try {
    return { request: decodeBinaryRequest(method.input, bytes) };
  } catch (e) {
    if (!(e instanceof UndecodableRequestError)) throw e;
    return { request: create(method.input), decodeError: e };
  }
}

function headersFromMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    if (key.endsWith("-bin")) continue;
    for (const value of values) if (typeof value === "string") headers.append(key, value);
  }
  return headers;
}

function timeoutFromDeadline(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function statusFromError(e: unknown, metadata: grpc.Metadata): Partial<grpc.StatusObject> {
  // The chain rejects with mapped ConnectErrors; anything else is a bug in this adapter.
  const mapped = mapError(e);
  // The google.rpc.Status with the error details, as connect-es sends it on the Connect port's gRPC protocol;
  // grpc-js base64-encodes a -bin key's Buffer itself.
  metadata.set(
    "grpc-status-details-bin",
    asBuffer(grpcStatusDetails(mapped.code, mapped.message, mapped.details)),
  );
  return { code: mapped.code as number as grpc.status, details: mapped.message, metadata };
}

interface SurfaceCall {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  getDeadline(): grpc.Deadline;
  on(event: "cancelled", listener: () => void): unknown;
}

function incomingCall(
  service: RegisteredService<unknown>,
  method: DescService["methods"][number],
  call: SurfaceCall & { request: Buffer },
  responseMetadata: grpc.Metadata,
  send: (m: Message) => Promise<void>,
  settled: { done: boolean },
  rest?: AsyncIterable<Message>,
): IncomingCall {
  const cancel = new AbortController();
  if (call.cancelled) cancel.abort();
  // grpc-js also reports "cancelled" when a finished call's stream closes; by then nobody listens, and
  // aborting would only build a DOMException per call (measured: ~1.5 % of a GetPrompt's CPU)
  else call.on("cancelled", () => settled.done || cancel.abort());
  return {
    service,
    method,
    protocol: "grpc",
    requestHeaders: headersFromMetadata(call.metadata),
    timeoutMs: timeoutFromDeadline(call.getDeadline()),
    transportSignal: cancel.signal,
    ...decodeRequest(method, call.request),
    rest,
    send,
    setResponseHeader: (name, value) => responseMetadata.set(name, value),
  };
}

/** The next message of a client stream, or undefined at its end or when the call is cancelled first. */
function nextMessage(
  iterator: AsyncIterator<Buffer>,
  call: SurfaceCall,
): Promise<IteratorResult<Buffer> | undefined> {
  if (call.cancelled) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onCancel = () => resolve(undefined);
    call.on("cancelled", onCancel);
    iterator.next().then(
      (r) => {
        (call as unknown as NodeJS.EventEmitter).removeListener("cancelled", onCancel);
        resolve(r);
      },
      (e: unknown) => {
        (call as unknown as NodeJS.EventEmitter).removeListener("cancelled", onCancel);
        reject(e);
      },
    );
  });
}

/**
 * A client stream: the first message is read here (the chain resolves auth and the project on it), the rest
 * are decoded as the handler pulls them; one that does not decode is INVALID_ARGUMENT, as a unary request is.
 * A client that cancels (or whose deadline passes, which grpc-js reports as a cancel) before its first message
 * answers CANCELLED without reaching the chain.
 */
function handleClientStream(
  service: RegisteredService<unknown>,
  method: DescService["methods"][number],
  pipeline: CallPipeline,
  encode: (m: Message) => Buffer,
): grpc.handleClientStreamingCall<Buffer, Buffer> {
  return (call, callback) => {
    const md = new grpc.Metadata();
    const settled = { done: false };
    let response: Buffer | undefined;
    const iterator = (call as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    async function* rest(): AsyncGenerator<Message> {
      for (;;) {
        const next = await nextMessage(iterator, call);
        if (next === undefined) throw new ConnectError("the client cancelled the call", Code.Canceled);
        if (next.done === true) {
          // A cancelled call's request stream can end like a complete one, its RST_STREAM handled a moment
          // later: look once more before the handler takes the end as "the client sent everything".
          await new Promise((resolve) => setImmediate(resolve));
          if (call.cancelled) throw new ConnectError("the client cancelled the call", Code.Canceled);
          return;
        }
        const decoded = decodeRequest(method, next.value);
        if (decoded.decodeError !== undefined) throw decoded.decodeError;
        yield decoded.request;
      }
    }
    nextMessage(iterator, call).then(
      (first) => {
        if (first === undefined) {
          callback({ code: grpc.status.CANCELLED, details: "the client cancelled the call" });
          return;
        }
        const surface = Object.assign(call, {
          request: first.done === true ? Buffer.alloc(0) : first.value,
        });
        return pipeline(
          incomingCall(
            service,
            method,
            surface,
            md,
            async (m) => {
              response = encode(m);
            },
            settled,
            first.done === true ? undefined : rest(),
          ),
        ).then(
          () => {
            settled.done = true;
            call.sendMetadata(md);
            callback(null, response);
          },
          (e: unknown) => {
            settled.done = true;
            callback(statusFromError(e, md));
          },
        );
      },
      (e: unknown) => callback(statusFromError(e, md)),
    );
  };
}

function implementation(
  service: RegisteredService<unknown>,
  pipeline: CallPipeline,
  maxMessageBytes: number,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const encode = (m: Message) => asBuffer(encodeBinaryResponse(method.output, m, maxMessageBytes));
    if (method.methodKind === "unary") {
      const handle: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
        const md = new grpc.Metadata();
        const settled = { done: false };
        let response: Buffer | undefined;
        pipeline(
          incomingCall(
            service,
            method,
            call,
            md,
            async (m) => {
              response = encode(m);
            },
            settled,
          ),
        ).then(
          () => {
            settled.done = true;
            call.sendMetadata(md);
            callback(null, response);
          },
          (e: unknown) => {
            settled.done = true;
            callback(statusFromError(e, md));
          },
        );
      };
      impl[method.name] = handle;
    } else if (method.methodKind === "client_streaming") {
      impl[method.name] = handleClientStream(service, method, pipeline, encode);
    } else {
      const handle: grpc.handleServerStreamingCall<Buffer, Buffer> = (call) => {
        const md = new grpc.Metadata();
        let headersSent = false;
        // Resolves once grpc-js has handed the message to HTTP/2, which it does only as the client's flow-control
        // window allows: the chain pulls the handler's next message then, so a client that stops reading stops
        // the handler. (`write()`'s return value would not: the call is an object-mode Writable that buffers 16
        // messages before it asks for 'drain'.) A cancelled call never calls back; the chain's signal ends it.
        const send = (m: Message) =>
          new Promise<void>((resolve) => {
            const bytes = encode(m);
            if (!headersSent) {
              call.sendMetadata(md);
              headersSent = true;
            }
            call.write(bytes, () => resolve());
          });
        const settled = { done: false };
        pipeline(incomingCall(service, method, call, md, send, settled)).then(
          () => {
            settled.done = true;
            call.end();
          },
          (e: unknown) => {
            settled.done = true;
            call.emit("error", statusFromError(e, md));
          },
        );
      };
      impl[method.name] = handle;
    }
  }
  return impl;
}

type ReflectionPackage = ConstructorParameters<typeof ReflectionService>[0];

/** What `@grpc/reflection` wants: a proto-loader-style package whose entries carry serialized file descriptors. */
function reflectionPackage(services: readonly DescService[]): ReflectionPackage {
  const files = new Map<string, Buffer>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, asBuffer(toBinary(FileDescriptorProtoSchema, file.proto)));
    for (const dep of file.dependencies) visit(dep);
  };
  for (const s of services) visit(s.file);
  // The error details our statuses carry, so that grpcurl and other reflection clients can decode them.
  visit(file_google_rpc_error_details);
  const entries: Record<string, unknown> = {};
  for (const s of services) {
    entries[s.typeName] = {
      format: "Protocol Buffer 3 DescriptorProto",
      type: {},
      fileDescriptorProtos: [...files.values()],
    };
  }
  // Health's own descriptors ship with grpc-health-check (loaded there by proto-loader).
  const healthCheck = healthServiceDefinition.Check;
  if (healthCheck !== undefined) {
    const health = healthCheck.requestType as { fileDescriptorProtos: Buffer[] };
    entries["grpc.health.v1.Health"] = {
      ...health,
      fileDescriptorProtos: health.fileDescriptorProtos.map(fixMapEntryNames),
    };
  }
  return entries as ReflectionPackage;
}

/**
 * protobufjs (behind proto-loader) names a map field's entry type after the field (`Statuses`) instead of
 * protoc's `StatusesEntry`, which strict clients such as grpcurl reject ("invalid map: incorrect implicit
 * map entry name"). Renames each map entry type and points its field at the new name.
 */
function fixMapEntryNames(bytes: Buffer): Buffer {
  const file = fromBinary(FileDescriptorProtoSchema, bytes);
  const prefix = file.package === "" ? "" : `.${file.package}`;
  for (const message of file.messageType) {
    for (const entry of message.nestedType.filter((n) => n.options?.mapEntry === true)) {
      const field = message.field.find(
        (f) => f.typeName === entry.name || f.typeName.endsWith(`.${entry.name}`),
      );
      if (field === undefined) continue;
      const camel = field.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      entry.name = `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
      field.typeName = `${prefix}.${message.name}.${entry.name}`;
    }
  }
  return asBuffer(toBinary(FileDescriptorProtoSchema, file));
}

export interface GrpcPortOptions {
  readonly services: readonly RegisteredService<unknown>[];
  readonly pipeline: CallPipeline;
  readonly maxMessageBytes: number;
}

export interface GrpcPort {
  listen(host: string, port: number): Promise<number>;
  setServing(serving: boolean): void;
  /** Stop accepting, end health watches, let calls finish; resolves when every connection is closed. */
  close(): Promise<void>;
  forceClose(): void;
}

/** The gRPC port: grpc-js with our services, grpc.health.v1 (overall "" and per service) and reflection. */
export function createGrpcPort(options: GrpcPortOptions): GrpcPort {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
  });
  for (const service of options.services) {
    server.addService(
      serverServiceDefinition(service.service),
      implementation(service, options.pipeline, options.maxMessageBytes),
    );
  }

  const names = ["", ...options.services.map((s) => s.service.typeName)];
  const health = new HealthImplementation(
    Object.fromEntries(names.map((n) => [n, "NOT_SERVING" as ServingStatus])),
  );
  // Health watches never end by themselves; track them so shutdown can end them after NOT_SERVING is sent.
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService: (definition, impl) => {
      const watch = impl.watch as grpc.handleServerStreamingCall<unknown, unknown>;
      server.addService(definition, {
        ...impl,
        watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          watches.add(call);
          call.on("cancelled", () => watches.delete(call));
          call.on("finish", () => watches.delete(call));
          watch(call);
        },
      });
    },
  });
  new ReflectionService(reflectionPackage(options.services.map((s) => s.service))).addToServer(server);
  let tcp: net.Server | undefined;
  const stopListening = () => {
    if (tcp?.listening) tcp.close();
  };

  return {
    listen: (host, port) => {
      // Our own listening socket instead of bindAsync, which cannot set the backlog (see listen.ts); grpc-js
      // serves every accepted connection exactly as it serves those it accepts itself.
      const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
      tcp = net.createServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
      return listenTcp(tcp, host, port, "GRPC_PORT");
    },
    setServing(serving) {
      for (const name of names) health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
    },
    close: () =>
      new Promise<void>((resolve) => {
        stopListening();
        for (const call of watches) call.end();
        watches.clear();
        server.tryShutdown(() => resolve());
      }),
    forceClose: () => {
      stopListening();
      server.forceShutdown();
    },
  };
}
