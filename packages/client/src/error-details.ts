import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "@autoforge/contracts/google/rpc/error_details";
import { ConnectError } from "@connectrpc/connect";

/**
 * The google.rpc error details the services send with every error (AIP-193; the reasons are listed in the
 * repository's docs/errors.md), read from a ConnectError of any transport into plain values.
 */
export interface ErrorDetails {
  /** ErrorInfo.reason: what to branch on (`STALE_ETAG`, `NAME_TAKEN`, `PROMPT_NOT_FOUND`, ...). */
  readonly reason: string | undefined;
  /** ErrorInfo.domain (`autoforge.dev`). */
  readonly domain: string | undefined;
  /** ErrorInfo.metadata (`{ prompt: "<id>" }`, ...). */
  readonly metadata: Readonly<Record<string, string>>;
  /** BadRequest: every bad field of the request (proto paths: `results[1].name`). */
  readonly fieldViolations: readonly { field: string; description: string; reason: string }[];
  /** PreconditionFailure: type `ETAG`, `STATE`, `LABEL` or `RENDER`, its subject and why. */
  readonly preconditionViolations: readonly { type: string; subject: string; description: string }[];
  /** ResourceInfo: what was not found (`autoforge.prompt.v1.Prompt`, its id or `project/name`). */
  readonly resource: { readonly type: string; readonly name: string } | undefined;
  /** RetryInfo.retry_delay in ms: wait at least this long before trying again. */
  readonly retryDelayMs: number | undefined;
}

/** The error details of `error` (any thrown value; a non-ConnectError has none). */
export function errorDetails(error: unknown): ErrorDetails {
  const err = error instanceof ConnectError ? error : undefined;
  const info = err?.findDetails(ErrorInfoSchema)[0];
  const resource = err?.findDetails(ResourceInfoSchema)[0];
  const delay = err?.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return {
    reason: info?.reason,
    domain: info?.domain,
    metadata: { ...info?.metadata },
    fieldViolations: (err?.findDetails(BadRequestSchema) ?? []).flatMap((d) =>
      d.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })),
    ),
    preconditionViolations: (err?.findDetails(PreconditionFailureSchema) ?? []).flatMap((d) =>
      d.violations.map((v) => ({ type: v.type, subject: v.subject, description: v.description })),
    ),
    resource:
      resource === undefined ? undefined : { type: resource.resourceType, name: resource.resourceName },
    retryDelayMs:
      delay === undefined ? undefined : Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6),
  };
}
