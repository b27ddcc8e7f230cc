export {
  type AuthConfig,
  type Authenticator,
  createAuthenticator,
  createTokenSigner,
  defaultAllProjectsSubjects,
  type TokenClaims,
  type TokenSigner,
} from "./auth.js";
export { type CallPipeline, createCallPipeline, type IncomingCall, type Middleware } from "./chain.js";
export {
  type AuditConfig,
  ConfigError,
  corsOptionsFromEnv,
  defaultMaintenanceIntervals,
  type Env,
  type MaintenanceIntervals,
  optionalEnv,
  readServiceConfig,
  type ServiceConfig,
  type ServiceConfigDefaults,
  serviceAuthConfig,
  urlEnv,
} from "./config.js";
export type {
  AuditEntry,
  AuditInput,
  CallContext,
  ClientStreamingHandler,
  DatabaseBinding,
  Principal,
  Role,
  ServerStreamingHandler,
  ServiceHandlers,
  TransactionOptions,
  UnaryHandler,
  UnitOfWork,
  UnitOfWorkTools,
} from "./context.js";
export { roles } from "./context.js";
export { type CorsOptions, createCorsHandler } from "./cors.js";
export { grpcStatusDetails } from "./error-details.js";
export {
  AbortedError,
  AlreadyExistsError,
  type ConstraintKind,
  codeName,
  DeadlineExceededError,
  defaultRetryDelayMs,
  type ErrorDetails,
  errorDomain,
  FailedPreconditionError,
  type FieldViolation,
  InvalidArgumentError,
  type MappedError,
  mapError,
  NotFoundError,
  PermissionDeniedError,
  type PreconditionViolation,
  ResourceExhaustedError,
  type ResourceRef,
  RpcError,
  UnauthenticatedError,
  UnavailableError,
  type WireDetail,
} from "./errors.js";
export { createGrpcServiceDefinition } from "./grpc-port.js";
export { ListenError } from "./listen.js";
export { createServiceLogger, type ServiceLoggerOptions, serializeError } from "./logger.js";
export {
  createDatabaseMetrics,
  createProcessMetricsRegistry,
  createRpcMetrics,
  type DatabaseMetrics,
  grpcCodeLabel,
  type MeteredDatabase,
  type RetryObservation,
  type RpcMetrics,
  type RpcObservation,
  type UnitOfWorkObservation,
} from "./metrics.js";
export {
  type CappedPageOptions,
  cappedKeysetPage,
  decodePageToken,
  defaultPageMaxBytes,
  defaultPageSizeLimits,
  encodedItemSize,
  encodedSizeBound,
  encodePageToken,
  filterDigest,
  type KeyPart,
  keysetPage,
  type ListView,
  listView,
  type PageSizeLimits,
  pageSizeRule,
  pageTokenRule,
  resolvePageSize,
} from "./pagination.js";
export {
  type Access,
  access,
  allProjects,
  describeAccess,
  hasProjectRole,
  isProjectRole,
  type ProjectMembership,
  type ProjectRole,
  type ProjectScope,
  personalProject,
  projectRoles,
  requestIdOwner,
  resolveProjectScope,
  teamProjectPattern,
} from "./projects.js";
export {
  databaseProbe,
  defaultReadinessIntervalMs,
  defaultReadinessTimeoutMs,
  type ReadinessOptions,
} from "./readiness.js";
export {
  createRequestIds,
  type RequestIdScope,
  type RequestIdStore,
  type RequestIds,
  requestDigest,
  stableStringify,
} from "./request-digest.js";
export { type RunUntilSignalOptions, runUntilSignal } from "./run-until-signal.js";
export {
  createServer,
  defaultMaxMessageBytes,
  defaultMaxTimeoutMs,
  type ListenOptions,
  type Server,
  type ServerLimits,
  type ServerOptions,
} from "./server.js";
export {
  type AccessRequirements,
  defineService,
  type RegisteredService,
  type ServiceRegistration,
} from "./service.js";
export { jsonToStruct, structToJson } from "./struct-json.js";
export {
  extractTraceContext,
  injectTraceContext,
  startTracing,
  type Tracing,
  type TracingOptions,
  tracer,
  tracesExporters,
} from "./tracing.js";
export {
  createValidators,
  defineValidator,
  type FieldRules,
  type MessageValidator,
  protoFieldPath,
  type Validators,
  type Violations,
} from "./validation.js";
