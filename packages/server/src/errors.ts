import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Typed errors that handlers and domain code throw. Each carries its status code; `mapError` is the one
 * place that turns these, ConnectErrors, database errors and anything else into a status + message.
 */
export abstract class RpcError extends Error {
  abstract readonly code: Code;
}

export class NotFoundError extends RpcError {
  override readonly name = "NotFoundError";
  readonly code = Code.NotFound;
}

/** Bad input. `field` is the proto field name (snake_case, dotted for nested fields). */
export class InvalidArgumentError extends RpcError {
  override readonly name = "InvalidArgumentError";
  readonly code = Code.InvalidArgument;
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class AlreadyExistsError extends RpcError {
  override readonly name = "AlreadyExistsError";
  readonly code = Code.AlreadyExists;
}

export class FailedPreconditionError extends RpcError {
  override readonly name = "FailedPreconditionError";
  readonly code = Code.FailedPrecondition;
}

/** A concurrency conflict (e.g. a stale etag): the client may re-read and retry. */
export class AbortedError extends RpcError {
  override readonly name = "AbortedError";
  readonly code = Code.Aborted;
}

export class PermissionDeniedError extends RpcError {
  override readonly name = "PermissionDeniedError";
  readonly code = Code.PermissionDenied;
}

export class UnavailableError extends RpcError {
  override readonly name = "UnavailableError";
  readonly code = Code.Unavailable;
}

export class ResourceExhaustedError extends RpcError {
  override readonly name = "ResourceExhaustedError";
  readonly code = Code.ResourceExhausted;
}

export class UnauthenticatedError extends RpcError {
  override readonly name = "UnauthenticatedError";
  readonly code = Code.Unauthenticated;
}

export class DeadlineExceededError extends RpcError {
  override readonly name = "DeadlineExceededError";
  readonly code = Code.DeadlineExceeded;
}

/** gRPC canonical names (`NOT_FOUND`), used in logs and metrics labels. */
export function codeName(code: Code | 0): string {
  if (code === 0) return "OK";
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** What `mapError` decided: the status sent to the client, and the cause to log when it is INTERNAL. */
export interface MappedError {
  readonly code: Code;
  /** Message sent to the client. Never contains the cause of an INTERNAL error. */
  readonly message: string;
  /** Set for INTERNAL (and UNKNOWN) errors: log it, never send it. */
  readonly cause?: unknown;
}

/** The kinds `@autoforge/db`'s ConstraintViolationError reports. */
export type ConstraintKind =
  | "check"
  | "unique"
  | "foreign_key"
  | "primary_key"
  | "not_null"
  | "trigger"
  | "other";

const constraintCodes: Record<ConstraintKind, Code> = {
  check: Code.InvalidArgument,
  not_null: Code.InvalidArgument,
  trigger: Code.InvalidArgument,
  unique: Code.AlreadyExists,
  primary_key: Code.AlreadyExists,
  foreign_key: Code.FailedPrecondition,
  // A remote server that reports a bare SQLITE_CONSTRAINT: the kind is unknown, the input broke a rule.
  other: Code.InvalidArgument,
};

const constraintMessages: Record<ConstraintKind, string> = {
  check: "a value violates a constraint",
  not_null: "a required value is missing",
  trigger: "the change is not allowed",
  unique: "the resource already exists",
  primary_key: "the resource already exists",
  foreign_key: "a referenced resource does not exist",
  other: "the change violates a constraint",
};

// Database errors are recognised by name and shape, not by instanceof: this package does not import
// @autoforge/db (it depends on it structurally), and a duplicated module copy would defeat instanceof.
function isConstraintViolation(e: unknown): e is Error & { kind: ConstraintKind } {
  if (!(e instanceof Error) || e.name !== "ConstraintViolationError") return false;
  const kind: unknown = (e as Error & { kind?: unknown }).kind;
  return typeof kind === "string" && Object.hasOwn(constraintCodes, kind);
}

function isTransientDatabaseError(e: unknown): e is Error {
  // DatabaseClosedError: the service is stopping; another replica can answer.
  return e instanceof Error && (e.name === "TransientDatabaseError" || e.name === "DatabaseClosedError");
}

function isDatabaseDeadline(e: unknown): boolean {
  return (
    e instanceof Error &&
    e.name === "DeadlineExceededError" &&
    (e as { code?: unknown }).code === "DEADLINE_EXCEEDED"
  );
}

/**
 * The one mapping from thrown values to status codes:
 *
 * | thrown | code |
 * |---|---|
 * | RpcError subclasses | their code |
 * | ConnectError | its code and message |
 * | ConstraintViolationError check / not_null / trigger | INVALID_ARGUMENT |
 * | ConstraintViolationError unique / primary_key | ALREADY_EXISTS |
 * | ConstraintViolationError foreign_key | FAILED_PRECONDITION |
 * | ConstraintViolationError other (kind not reported, e.g. sqld over HTTP) | INVALID_ARGUMENT |
 * | TransientDatabaseError (retries exhausted), DatabaseClosedError | UNAVAILABLE |
 * | the database's DeadlineExceededError; anything else once the deadline passed | DEADLINE_EXCEEDED |
 * | anything else | INTERNAL ("internal error"; the cause is returned for logging) |
 */
export function mapError(e: unknown, deadline?: number): MappedError {
  if (e instanceof RpcError) return { code: e.code, message: e.message };
  if (e instanceof ConnectError) {
    if (e.code === Code.Internal || e.code === Code.Unknown)
      return { code: e.code, message: "internal error", cause: e };
    return { code: e.code, message: e.rawMessage };
  }
  if (isConstraintViolation(e)) {
    return { code: constraintCodes[e.kind], message: constraintMessages[e.kind] };
  }
  // Transient before deadline: the database's retry budget ends before the RPC deadline, and "the database
  // is down" (UNAVAILABLE, retry elsewhere) tells the client more than DEADLINE_EXCEEDED.
  if (isTransientDatabaseError(e)) {
    return { code: Code.Unavailable, message: "the database is temporarily unavailable, retry later" };
  }
  if (isDatabaseDeadline(e) || (deadline !== undefined && Date.now() >= deadline)) {
    return { code: Code.DeadlineExceeded, message: "deadline exceeded" };
  }
  return { code: Code.Internal, message: "internal error", cause: e };
}

/** mapError, as a ConnectError (what the Connect port throws, and what the gRPC port turns into a status). */
export function toConnectError(mapped: MappedError): ConnectError {
  return new ConnectError(mapped.message, mapped.code);
}
