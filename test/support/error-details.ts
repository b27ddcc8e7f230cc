/**
 * Reading the google.rpc error details of an answer the way clients do: a grpc-js client from the
 * `grpc-status-details-bin` trailer (a serialized google.rpc.Status), a Connect client from ConnectError's
 * details. Both end as the details' protobuf JSON (`{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
 * ...}`), so the answers of two ports compare with toEqual.
 */
import { file_google_rpc_error_details } from "@autoforge/contracts/google/rpc/error_details";
import { StatusSchema } from "@autoforge/contracts/google/rpc/status";
import { create, createRegistry, fromBinary, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import type { ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";

const registry = createRegistry(file_google_rpc_error_details);

function anyAsJson(any: Any): JsonValue {
  return toJson(AnySchema, any, { registry });
}

/** A google.rpc.Status as sent in `grpc-status-details-bin`, with its details as JSON. */
export function statusFromBytes(bytes: Uint8Array): { code: number; message: string; details: JsonValue[] } {
  const status = fromBinary(StatusSchema, bytes);
  return { code: status.code, message: status.message, details: status.details.map(anyAsJson) };
}

/** The details of a grpc-js client's error; fails when the trailer is missing or disagrees with the status. */
export function grpcErrorDetails(err: grpc.ServiceError): JsonValue[] {
  const [bin] = err.metadata.get("grpc-status-details-bin");
  if (!(bin instanceof Buffer)) throw new Error("the answer has no grpc-status-details-bin trailer");
  const status = statusFromBytes(bin);
  if (status.code !== err.code || status.message !== err.details) {
    throw new Error(`google.rpc.Status ${status.code} "${status.message}" != ${err.code} "${err.details}"`);
  }
  return status.details;
}

/** The details of a Connect client's error (any of its protocols). */
export function connectErrorDetails(err: ConnectError): JsonValue[] {
  return err.details.map((d) => {
    if ("desc" in d) throw new Error("an outgoing detail on a client-side error");
    return anyAsJson(create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }));
  });
}

/** The `details` of a Connect-protocol error body (`{type, value: base64}`), decoded. */
export function connectJsonDetails(details: readonly unknown[]): JsonValue[] {
  return details.map((d) => {
    const { type, value } = d as { type: string; value: string };
    const bytes = Buffer.from(value, "base64");
    return anyAsJson(create(AnySchema, { typeUrl: `type.googleapis.com/${type}`, value: bytes }));
  });
}

/** The detail of one type (`ErrorInfo`, `BadRequest`, ...) among `details`, or undefined. */
export function detailOf(details: readonly JsonValue[], type: string): Record<string, JsonValue> | undefined {
  return details.find(
    (d): d is Record<string, JsonValue> =>
      typeof d === "object" &&
      d !== null &&
      !Array.isArray(d) &&
      d["@type"] === `type.googleapis.com/google.rpc.${type}`,
  );
}
