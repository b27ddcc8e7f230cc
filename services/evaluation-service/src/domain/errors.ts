// Typed errors come from the server kit: its one error mapper turns them into status codes.
export {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@autoforge/server";
