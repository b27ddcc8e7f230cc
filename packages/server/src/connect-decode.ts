import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import {
  encodeEnvelope,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  endStreamToJson,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { UndecodableRequestError } from "./decode.js";
import { mapError, toConnectError } from "./errors.js";

/**
 * connect-node decodes a request before our implementation runs, and answers a binary body that does not
 * decode with INTERNAL (`parse binary: ...`). That is the client's fault: a call that failed with INTERNAL or
 * UNKNOWN before it reached the implementation failed in decoding, and its answer is rewritten to
 * INVALID_ARGUMENT "request could not be decoded: ...", in the framing of the call's protocol. Where the
 * failure arose is known from a context value the implementation sets, not from the message text.
 */
const reached = createContextKey<{ value: boolean }>({ value: true }, { description: "reached" });

/** Called first thing by every implementation. */
export function markReached(ctx: HandlerContext): void {
  ctx.values.get(reached).value = true;
}

function decodeFailure(error: ConnectError | undefined): ConnectError | undefined {
  if (error === undefined || (error.code !== Code.Internal && error.code !== Code.Unknown)) return undefined;
  // The same status and details as the gRPC port's answer to bytes that do not decode.
  return toConnectError(mapError(new UndecodableRequestError(error.rawMessage)), error.metadata);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks);
}

/** One enveloped frame (flags, 4-byte big-endian length, data) spanning the whole chunk, else undefined. */
function singleEnvelope(chunk: Uint8Array): { flags: number; data: Uint8Array } | undefined {
  if (chunk.byteLength < 5) return undefined;
  const length = new DataView(chunk.buffer, chunk.byteOffset + 1, 4).getUint32(0);
  if (5 + length !== chunk.byteLength) return undefined;
  return { flags: chunk[0] ?? 0, data: chunk.subarray(5) };
}

/** The final frame of a gRPC-Web or Connect streaming answer, with its error rewritten when decoding failed. */
function rewriteFrame(chunk: Uint8Array, contentType: string): Uint8Array {
  const frame = singleEnvelope(chunk);
  if (frame === undefined) return chunk;
  if (contentType.startsWith("application/grpc-web") && (frame.flags & trailerFlag) === trailerFlag) {
    const trailer = trailerParse(frame.data);
    const replaced = decodeFailure(findTrailerError(trailer));
    if (replaced === undefined) return chunk;
    return encodeEnvelope(frame.flags, trailerSerialize(setTrailerStatus(trailer, replaced)));
  }
  if (contentType.startsWith("application/connect+") && (frame.flags & endStreamFlag) === endStreamFlag) {
    const end = endStreamFromJson(frame.data);
    const replaced = decodeFailure(end.error);
    if (replaced === undefined) return chunk;
    const json = JSON.stringify(endStreamToJson(end.metadata, replaced, undefined));
    return encodeEnvelope(frame.flags, new TextEncoder().encode(json));
  }
  return chunk;
}

async function* rewriteStream(
  body: AsyncIterable<Uint8Array>,
  res: UniversalServerResponse,
  contentType: string,
  mark: { value: boolean },
): AsyncIterable<Uint8Array> {
  for await (const chunk of body) yield mark.value ? chunk : rewriteFrame(chunk, contentType);
  // gRPC: the status is in the HTTP trailers, written after the body.
  if (!mark.value && res.trailer !== undefined && !contentType.startsWith("application/grpc-web")) {
    const replaced = decodeFailure(findTrailerError(res.trailer));
    if (replaced !== undefined) setTrailerStatus(res.trailer, replaced);
  }
}

async function rewriteUnaryError(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  if (res.body !== undefined && Symbol.asyncIterator in res.body)
    for await (const c of res.body) chunks.push(c);
  const bytes = concat(chunks);
  const original = errorFromJsonBytes(bytes, undefined, new ConnectError("", Code.Unknown));
  const replaced = decodeFailure(original);
  const body = replaced === undefined ? bytes : errorToJsonBytes(replaced, undefined);
  const header = new Headers(res.header);
  header.set("content-length", String(body.byteLength));
  return {
    ...res,
    status: replaced === undefined ? res.status : codeToHttpStatus(replaced.code),
    header,
    body: (async function* () {
      yield body;
    })(),
  };
}

/** Wraps a router handler so decoding failures are INVALID_ARGUMENT (see above). */
export function answerDecodeFailures(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const mark = { value: false };
    req.contextValues?.set(reached, mark);
    const res = await handler(req);
    if (mark.value || res.body === undefined || !(Symbol.asyncIterator in res.body)) return res;
    const contentType = new Headers(res.header).get("content-type") ?? "";
    // Connect unary: the error is a JSON body with a non-200 status, complete by now.
    if (res.status !== 200 && contentType.startsWith("application/json")) return rewriteUnaryError(res);
    return { ...res, body: rewriteStream(res.body, res, contentType, mark) };
  };
  return Object.assign(wrapped, handler);
}
