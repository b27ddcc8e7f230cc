import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "@autoforge/contracts/google/rpc/error_details";
import { StatusSchema } from "@autoforge/contracts/google/rpc/status";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import type { Code, ConnectError } from "@connectrpc/connect";

/**
 * The google.rpc error details (AIP-193) an error is answered with. Both ports send the same list: the
 * Connect port through ConnectError's details (connect-es encodes them for Connect, gRPC-Web and gRPC), the
 * gRPC port as a serialized google.rpc.Status in the `grpc-status-details-bin` trailer (see
 * {@link grpcStatusDetails}).
 */

/**
 * The ErrorInfo domain of every reason this project sends (docs/errors.md lists them). One domain for both
 * services: the kit raises most errors (auth, validation, database), and a reason means the same everywhere.
 */
export const errorDomain = "autoforge.dev";

/** One bad field of a request (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** The proto field path: snake_case, dotted for nested fields, `[i]` for list items (`results[1].name`). */
  readonly field: string;
  readonly description: string;
  /** UPPER_SNAKE_CASE, when the rule has a name clients may act on. */
  readonly reason?: string;
}

/** One failed precondition (google.rpc.PreconditionFailure.Violation). */
export interface PreconditionViolation {
  /** What kind of precondition: `ETAG`, `STATE`, ... (docs/errors.md). */
  readonly type: string;
  /** What it is about, relative to the type (e.g. the prompt id). */
  readonly subject: string;
  readonly description: string;
}

/** The resource an error is about (google.rpc.ResourceInfo). */
export interface ResourceRef {
  /** The fully qualified message name, e.g. `autoforge.prompt.v1.Prompt`. */
  readonly type: string;
  /** Its id, or `project/name` when it was asked for by name. */
  readonly name: string;
  readonly owner?: string;
  readonly description?: string;
}

/** What an error tells clients beyond its code and message. */
export interface ErrorDetails {
  /** ErrorInfo.reason (UPPER_SNAKE_CASE) in {@link errorDomain}; defaults to the code's name (`NOT_FOUND`). */
  readonly reason?: string;
  /** ErrorInfo.metadata: lowerCamelCase keys, string values. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly fieldViolations?: readonly FieldViolation[];
  readonly preconditionViolations?: readonly PreconditionViolation[];
  readonly resource?: ResourceRef;
  /** RetryInfo.retry_delay; `null` for none where the code would send one by default. */
  readonly retryDelayMs?: number | null;
}

/** One detail as ConnectError holds it: outgoing `{desc, value}`, or incoming from a dependency. */
export type WireDetail = ConnectError["details"][number];

function detail<Desc extends DescMessage>(desc: Desc, value: MessageInitShape<Desc>): WireDetail {
  return { desc, value } as WireDetail;
}

export function errorInfoDetail(reason: string, metadata: Readonly<Record<string, string>> = {}): WireDetail {
  return detail(ErrorInfoSchema, { reason, domain: errorDomain, metadata: { ...metadata } });
}

function durationOf(ms: number) {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 };
}

/** The details of `details` with `reason` resolved: ErrorInfo first, then the others that apply. */
export function buildDetails(details: ErrorDetails & { readonly reason: string }): WireDetail[] {
  const out = [errorInfoDetail(details.reason, details.metadata)];
  if (details.fieldViolations !== undefined && details.fieldViolations.length > 0) {
    out.push(
      detail(BadRequestSchema, {
        fieldViolations: details.fieldViolations.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason ?? "",
        })),
      }),
    );
  }
  if (details.preconditionViolations !== undefined && details.preconditionViolations.length > 0) {
    out.push(detail(PreconditionFailureSchema, { violations: [...details.preconditionViolations] }));
  }
  if (details.resource !== undefined) {
    const r = details.resource;
    out.push(
      detail(ResourceInfoSchema, {
        resourceType: r.type,
        resourceName: r.name,
        owner: r.owner ?? "",
        description: r.description ?? "",
      }),
    );
  }
  if (typeof details.retryDelayMs === "number") {
    out.push(detail(RetryInfoSchema, { retryDelay: durationOf(details.retryDelayMs) }));
  }
  return out;
}

function typeNameOf(d: WireDetail): string {
  return "desc" in d ? d.desc.typeName : d.type;
}

/** `details` with an ErrorInfo in front when none is among them (an error from connect-es or a dependency). */
export function withErrorInfo(reason: string, details: readonly WireDetail[]): WireDetail[] {
  if (details.some((d) => typeNameOf(d) === ErrorInfoSchema.typeName)) return [...details];
  return [errorInfoDetail(reason), ...details];
}

function toAny(d: WireDetail): Any {
  if ("desc" in d) {
    const value = toBinary(d.desc, create(d.desc, d.value));
    return create(AnySchema, { typeUrl: `type.googleapis.com/${d.desc.typeName}`, value });
  }
  return create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value });
}

/**
 * The serialized google.rpc.Status for the `grpc-status-details-bin` trailer: the same code and message as
 * grpc-status / grpc-message, and the details as Any (type URLs `type.googleapis.com/<full name>`).
 */
export function grpcStatusDetails(code: Code, message: string, details: readonly WireDetail[]): Uint8Array {
  return toBinary(StatusSchema, create(StatusSchema, { code, message, details: details.map(toAny) }));
}
