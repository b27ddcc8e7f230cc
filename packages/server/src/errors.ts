import { Code, ConnectError } from "@connectrpc/connect";
import {
  buildDetails,
  type ErrorDetails,
  errorInfoDetail,
  type FieldViolation,
  type ResourceRef,
  type WireDetail,
  withErrorInfo,
} from "./error-details.js";

export {
  type ErrorDetails,
  errorDomain,
  type FieldViolation,
  type PreconditionViolation,
  type ResourceRef,
  type WireDetail,
} from "./error-details.js";

/**
 * Typed errors that handlers and domain code throw. Each carries its status code and its details;
 * `mapError` is the one place that turns these, ConnectErrors, database errors and anything else into a
 * status, a message and the details sent with them.
 */
export abstract class RpcError extends Error {
  abstract readonly code: Code;
  readonly details: ErrorDetails;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message);
    this.details = details;
  }
}

export class NotFoundError extends RpcError {
  override readonly name = "NotFoundError";
  readonly code = Code.NotFound;
  /** `resource` becomes a ResourceInfo detail. */
  constructor(message: string, resource?: ResourceRef, details: Omit<ErrorDetails, "resource"> = {}) {
    super(message, resource === undefined ? details : { ...details, resource });
  }
}

type WithoutViolations = Omit<ErrorDetails, "fieldViolations">;

/**
 * Bad input, as a BadRequest with one or more field violations. `field` is the proto field name (snake_case,
 * dotted for nested fields, `[i]` for list items); pass a list to report every violation of a request at once.
 */
export class InvalidArgumentError extends RpcError {
  override readonly name = "InvalidArgumentError";
  readonly code = Code.InvalidArgument;
  readonly violations: readonly [FieldViolation, ...FieldViolation[]];
  constructor(field: string, description: string, details?: WithoutViolations);
  constructor(violations: readonly [FieldViolation, ...FieldViolation[]], details?: WithoutViolations);
  constructor(
    first: string | readonly [FieldViolation, ...FieldViolation[]],
    second?: string | WithoutViolations,
    third?: WithoutViolations,
  ) {
    const details = (typeof first === "string" ? third : (second as WithoutViolations | undefined)) ?? {};
    const violations: readonly [FieldViolation, ...FieldViolation[]] =
      typeof first === "string"
        ? [
            {
              field: first,
              description: String(second),
              ...(details.reason ? { reason: details.reason } : {}),
            },
          ]
        : first;
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "), {
      ...details,
      fieldViolations: violations,
    });
    this.violations = violations;
  }

  /** The first violation's field. */
  get field(): string {
    return this.violations[0].field;
  }
}

export class AlreadyExistsError extends RpcError {
  override readonly name = "AlreadyExistsError";
  readonly code = Code.AlreadyExists;
}

/** The system is not in the state the call needs: send `preconditionViolations`. */
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

/** Retrying later may succeed: a RetryInfo says when (default {@link defaultRetryDelayMs}). */
export class UnavailableError extends RpcError {
  override readonly name = "UnavailableError";
  readonly code = Code.Unavailable;
}

/** A rate or quota limit: a RetryInfo says when to try again (default {@link defaultRetryDelayMs}). */
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

/** RetryInfo's delay where the thrower named none: about the time a busy database or a restart takes. */
export const defaultRetryDelayMs = 1000;

/** The details sent for `code`: the reason defaults to the code's name; retryable codes get a RetryInfo. */
function wireDetails(code: Code, details: ErrorDetails): WireDetail[] {
  const retryable = code === Code.Unavailable || code === Code.ResourceExhausted;
  const retryDelayMs =
    details.retryDelayMs === undefined && retryable ? defaultRetryDelayMs : details.retryDelayMs;
  return buildDetails({ ...details, reason: details.reason ?? codeName(code), retryDelayMs });
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
  /** The google.rpc details sent with the status, ErrorInfo always among them (see error-details.ts). */
  readonly details: readonly WireDetail[];
  /**
   * Set where an operator must see the cause: INTERNAL (and UNKNOWN) errors, and a database refusing the
   * service's credentials (UNAVAILABLE). Log it, never send it.
   */
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
  // A constraint SQLite named neither by code nor by message: the input broke a rule.
  other: Code.InvalidArgument,
};

const constraintReasons: Record<ConstraintKind, string> = {
  check: "CONSTRAINT_VIOLATED",
  not_null: "REQUIRED_VALUE_MISSING",
  trigger: "CHANGE_NOT_ALLOWED",
  unique: "ALREADY_EXISTS",
  primary_key: "ALREADY_EXISTS",
  foreign_key: "REFERENCED_RESOURCE_MISSING",
  other: "CONSTRAINT_VIOLATED",
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

/** `@autoforge/db`'s DatabaseAuthError: the database refused the service's own token (HTTP 401/403). */
function isDatabaseAuthError(e: unknown): e is Error {
  return e instanceof Error && e.name === "DatabaseAuthError";
}

/** `@autoforge/db`'s CommitOutcomeUnknownError: the connection broke while a COMMIT was on its way. */
function isCommitOutcomeUnknown(e: unknown): e is Error {
  return e instanceof Error && e.name === "CommitOutcomeUnknownError";
}

/** `@autoforge/db`'s ResultTooLargeError: a remote database refused to send a result this large. */
function isResultTooLarge(e: unknown): e is Error {
  return e instanceof Error && e.name === "ResultTooLargeError";
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
 * | ConstraintViolationError other (kind named neither by code nor by message) | INVALID_ARGUMENT |
 * | TransientDatabaseError (retries exhausted), DatabaseClosedError | UNAVAILABLE (with RetryInfo) |
 * | DatabaseAuthError (the database refused the service's token) | UNAVAILABLE (cause returned for logging) |
 * | CommitOutcomeUnknownError (connection broke during COMMIT) | UNAVAILABLE, reason COMMIT_OUTCOME_UNKNOWN |
 * | ResultTooLargeError (sqld's response size limit) | RESOURCE_EXHAUSTED, reason DATABASE_RESULT_TOO_LARGE |
 * | the database's DeadlineExceededError; anything else once the deadline passed | DEADLINE_EXCEEDED |
 * | anything else | INTERNAL ("internal error"; the cause is returned for logging) |
 *
 * Every answer carries an ErrorInfo (reason, {@link errorDomain}, metadata); INTERNAL's says only `INTERNAL`.
 */
export function mapError(e: unknown, deadline?: number): MappedError {
  if (e instanceof RpcError) {
    return { code: e.code, message: e.message, details: wireDetails(e.code, e.details) };
  }
  if (e instanceof ConnectError) {
    // Already mapped (by the chain) or from a dependency: its details go on, with an ErrorInfo if it had none.
    if (e.code === Code.Internal || e.code === Code.Unknown)
      return { code: e.code, message: "internal error", details: [errorInfoDetail("INTERNAL")], cause: e };
    return { code: e.code, message: e.rawMessage, details: withErrorInfo(codeName(e.code), e.details) };
  }
  if (isConstraintViolation(e)) {
    const code = constraintCodes[e.kind];
    return {
      code,
      message: constraintMessages[e.kind],
      details: wireDetails(code, { reason: constraintReasons[e.kind] }),
    };
  }
  // Not the caller's fault, and not a bug of ours: another instance (with a valid token) may answer, and the
  // readiness probe takes this one out of service. The cause is logged: an operator must renew the token.
  if (isDatabaseAuthError(e)) {
    return {
      code: Code.Unavailable,
      message: "the database is temporarily unavailable, retry later",
      details: wireDetails(Code.Unavailable, { reason: "DATABASE_UNAVAILABLE" }),
      cause: e,
    };
  }
  // The write may have been applied: a retry is safe with the same request_id (AIP-155), else read first.
  if (isCommitOutcomeUnknown(e)) {
    return {
      code: Code.Unavailable,
      message:
        "the connection to the database broke while committing: the change may or may not have been applied; retry with the same request_id, or read before writing again",
      details: wireDetails(Code.Unavailable, { reason: "COMMIT_OUTCOME_UNKNOWN" }),
    };
  }
  // The same request gets the same answer (no RetryInfo); a smaller page or a BASIC view may fit.
  if (isResultTooLarge(e)) {
    return {
      code: Code.ResourceExhausted,
      message:
        "the database refused to send a result this large (its response size limit): ask for a smaller page_size, or the BASIC view",
      details: wireDetails(Code.ResourceExhausted, {
        reason: "DATABASE_RESULT_TOO_LARGE",
        retryDelayMs: null,
      }),
    };
  }
  // Transient before deadline: the database's retry budget ends before the RPC deadline, and "the database
  // is down" (UNAVAILABLE, retry elsewhere) tells the client more than DEADLINE_EXCEEDED.
  if (isTransientDatabaseError(e)) {
    return {
      code: Code.Unavailable,
      message: "the database is temporarily unavailable, retry later",
      details: wireDetails(Code.Unavailable, { reason: "DATABASE_UNAVAILABLE" }),
    };
  }
  if (isDatabaseDeadline(e) || (deadline !== undefined && Date.now() >= deadline)) {
    return {
      code: Code.DeadlineExceeded,
      message: "deadline exceeded",
      details: wireDetails(Code.DeadlineExceeded, {}),
    };
  }
  return { code: Code.Internal, message: "internal error", details: [errorInfoDetail("INTERNAL")], cause: e };
}

/** mapError, as a ConnectError (what the Connect port throws, and what the gRPC port turns into a status). */
export function toConnectError(mapped: MappedError, metadata?: Headers): ConnectError {
  return new ConnectError(mapped.message, mapped.code, metadata, [...mapped.details] as never);
}
