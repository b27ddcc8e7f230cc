export type RenderErrorKind = "invalid_argument" | "failed_precondition";

/**
 * The renderer's one error. Services map `invalid_argument` to INVALID_ARGUMENT (`field` kept apart from
 * `reason` for error details) and `failed_precondition` to FAILED_PRECONDITION (whose message says it all).
 */
export class RenderError extends Error {
  override readonly name = "RenderError";

  constructor(
    readonly kind: RenderErrorKind,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(field === undefined ? reason : `${field}: ${reason}`);
  }

  static invalid(field: string, reason: string): RenderError {
    return new RenderError("invalid_argument", field, reason);
  }

  static precondition(reason: string): RenderError {
    return new RenderError("failed_precondition", undefined, reason);
  }
}
