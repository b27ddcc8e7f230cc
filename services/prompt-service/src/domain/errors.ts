// Typed errors come from the server kit: its one error mapper turns them into status codes.
export {
  AbortedError,
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from "@autoforge/server";
