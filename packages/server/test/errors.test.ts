import {
  CommitOutcomeUnknownError,
  type ConstraintKind,
  ConstraintViolationError,
  DatabaseAuthError,
  DatabaseClosedError,
  DeadlineExceededError as DatabaseDeadlineExceededError,
  TransientDatabaseError,
} from "@autoforge/db";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  AbortedError,
  AlreadyExistsError,
  codeName,
  FailedPreconditionError,
  InvalidArgumentError,
  mapError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "../src/index.js";

describe("mapError: the one mapping to status codes", () => {
  it.each([
    [new NotFoundError("prompt p1 not found"), Code.NotFound, "prompt p1 not found"],
    [
      new InvalidArgumentError("page_size", "must be <= 100"),
      Code.InvalidArgument,
      "page_size: must be <= 100",
    ],
    [new AlreadyExistsError("exists"), Code.AlreadyExists, "exists"],
    [new FailedPreconditionError("not running"), Code.FailedPrecondition, "not running"],
    [new AbortedError("stale etag"), Code.Aborted, "stale etag"],
    [new PermissionDeniedError("no"), Code.PermissionDenied, "no"],
    [new UnavailableError("down"), Code.Unavailable, "down"],
    [new ResourceExhaustedError("quota"), Code.ResourceExhausted, "quota"],
    [new UnauthenticatedError("who?"), Code.Unauthenticated, "who?"],
    [new ConnectError("from a dependency", Code.NotFound), Code.NotFound, "from a dependency"],
  ])("%s -> its code and message", (error, code, message) => {
    expect(mapError(error)).toMatchObject({ code, message });
  });

  const kinds: [ConstraintKind, Code][] = [
    ["check", Code.InvalidArgument],
    ["not_null", Code.InvalidArgument],
    ["trigger", Code.InvalidArgument],
    ["other", Code.InvalidArgument],
    ["unique", Code.AlreadyExists],
    ["primary_key", Code.AlreadyExists],
    ["foreign_key", Code.FailedPrecondition],
  ];
  it.each(kinds)("ConstraintViolationError %s -> %s", (kind, code) => {
    const e = new ConstraintViolationError(
      "SQLITE_CONSTRAINT: prompts.title",
      "SQLITE_CONSTRAINT",
      kind,
      "prompts.title",
    );
    const mapped = mapError(e);
    expect(mapped.code).toBe(code);
    expect(mapped.message).not.toContain("prompts.title"); // schema details stay in the logs
  });

  it("database availability and deadlines", () => {
    expect(mapError(new TransientDatabaseError("busy", "SQLITE_BUSY", "busy")).code).toBe(Code.Unavailable);
    expect(mapError(new DatabaseClosedError()).code).toBe(Code.Unavailable);
    expect(mapError(new DatabaseDeadlineExceededError()).code).toBe(Code.DeadlineExceeded);
    // Transient wins over a passed deadline: "the database is down" is the more useful answer.
    expect(mapError(new TransientDatabaseError("busy", "SQLITE_BUSY", "busy"), Date.now() - 1).code).toBe(
      Code.Unavailable,
    );
    expect(mapError(new Error("aborted"), Date.now() - 1).code).toBe(Code.DeadlineExceeded);
  });

  it("a refused database token -> UNAVAILABLE with its cause for the log; an unknown commit outcome says so", () => {
    const refused = new DatabaseAuthError(401);
    expect(mapError(refused)).toMatchObject({ code: Code.Unavailable, cause: refused });
    expect(mapError(refused).message).not.toContain("TOKEN");
    const unknown = mapError(new CommitOutcomeUnknownError());
    expect(unknown.code).toBe(Code.Unavailable);
    expect(unknown.cause).toBeUndefined();
    expect(unknown.message).toContain("request_id");
    expect(unknown.details[0]).toMatchObject({ value: { reason: "COMMIT_OUTCOME_UNKNOWN" } });
  });

  it("anything else -> INTERNAL with the cause kept for the log, never in the message", () => {
    const cause = new TypeError("x is undefined at secret/path.ts");
    expect(mapError(cause)).toMatchObject({ code: Code.Internal, message: "internal error", cause });
    const internal = new ConnectError("leaky detail", Code.Internal);
    expect(mapError(internal)).toMatchObject({
      code: Code.Internal,
      message: "internal error",
      cause: internal,
    });
  });

  it("names codes the gRPC way", () => {
    expect(codeName(0)).toBe("OK");
    expect(codeName(Code.DeadlineExceeded)).toBe("DEADLINE_EXCEEDED");
    expect(codeName(Code.PermissionDenied)).toBe("PERMISSION_DENIED");
  });
});
