// @autoforge/client: the universal part (any connect-es Transport). Node transports: "@autoforge/client/node";
// browsers: "@autoforge/client/web".

// The contracts, one namespace per service package: `prompt.GetPromptResponse`, `evaluation.EvaluationStatus`.
export * as admin from "@autoforge/contracts/admin/v1";
export { AdminService } from "@autoforge/contracts/admin/v1";
export * as evaluation from "@autoforge/contracts/evaluation/v1";
export { EvaluationService } from "@autoforge/contracts/evaluation/v1";
export * as datasets from "@autoforge/contracts/evaluation/v1/datasets";
export { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
export * as promotions from "@autoforge/contracts/evaluation/v1/promotions";
export { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
export * as prompt from "@autoforge/contracts/prompt/v1";
export { PromptService } from "@autoforge/contracts/prompt/v1";
// connect-es's error type and call options, from the same copy of @connectrpc/connect the client uses.
export {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
export * from "./cache/index.js";
export {
  type AutoforgeClient,
  type AutoforgeClientOptions,
  createAutoforgeClient,
  type ServiceName,
} from "./client.js";
export { type ErrorDetails, errorDetails } from "./error-details.js";
export {
  createAuthInterceptor,
  createPolicyTransport,
  defaultTimeoutMs,
  type PolicyTransportOptions,
} from "./policy-transport.js";
export {
  createRequestIdInterceptor,
  createRetryInterceptor,
  deadlineKey,
  generatedRequestIdKey,
  isRetryableError,
  type RetryClass,
  type RetryEvent,
  type RetryOptions,
  requestIdField,
  retryClass,
  skipRequestIdKey,
  withoutRequestId,
} from "./retry.js";
export {
  createTokenProvider,
  jwtTimes,
  type TokenProvider,
  type TokenProviderOptions,
  type TokenSource,
} from "./token.js";
