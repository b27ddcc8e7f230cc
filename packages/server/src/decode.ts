import { type DescMessage, fromBinary, type Message, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { type FieldViolation, RpcError } from "./errors.js";

/**
 * A request whose bytes do not decode as the method's input (bad wire type, truncated, a string that is not
 * valid UTF-8, JSON that is not the message): the client's fault, INVALID_ARGUMENT.
 */
export class UndecodableRequestError extends RpcError {
  override readonly name = "UndecodableRequestError";
  readonly code = Code.InvalidArgument;
  /** `violations`: the fields that did not decode, when they can be named (strict JSON does). */
  constructor(reason: string, violations: readonly FieldViolation[] = []) {
    super(`request could not be decoded: ${reason}`, {
      reason: "REQUEST_UNDECODABLE",
      fieldViolations: violations,
    });
  }
}

/** A response the server may not send: larger than the configured message limit. */
export class ResponseTooLargeError extends RpcError {
  override readonly name = "ResponseTooLargeError";
  readonly code = Code.ResourceExhausted;
  constructor(bytes: number, limit: number) {
    // No RetryInfo: retrying the same request gets the same answer (a smaller page may fit).
    super(`response is ${bytes} bytes, larger than the ${limit}-byte message limit`, {
      reason: "RESPONSE_TOO_LARGE",
      metadata: { responseBytes: String(bytes), limitBytes: String(limit) },
      retryDelayMs: null,
    });
  }
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** protobuf-es `fromBinary`, which also rejects strings that are not valid UTF-8 (proto3 verifies them). */
export function decodeBinaryRequest(schema: DescMessage, bytes: Uint8Array): Message {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new UndecodableRequestError(reasonOf(e));
  }
}

/** Binary-encodes a response, refusing one over `limit` bytes (the caller gets RESOURCE_EXHAUSTED). */
export function encodeBinaryResponse(schema: DescMessage, message: Message, limit: number): Uint8Array {
  const bytes = toBinary(schema, message);
  if (bytes.byteLength > limit) throw new ResponseTooLargeError(bytes.byteLength, limit);
  return bytes;
}

const utf8 = new TextEncoder();

/** The size a response will have on the wire in the given codec; throws ResponseTooLargeError over `limit`. */
export function assertResponseFits(
  schema: DescMessage,
  message: Message,
  json: boolean,
  limit: number,
): void {
  const size = json
    ? utf8.encode(toJsonString(schema, message)).byteLength
    : toBinary(schema, message).byteLength;
  if (size > limit) throw new ResponseTooLargeError(size, limit);
}
