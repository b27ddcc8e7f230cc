import type {
  DescMethod,
  DescMethodClientStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { ProjectRole, ProjectScope } from "./projects.js";

/** Roles a token may carry in its `roles` claim. */
export const roles = ["user", "publisher", "service", "admin"] as const;
export type Role = (typeof roles)[number];

/** The authenticated caller. `subject` is the token's `sub`: recorded as who created or changed things. */
export interface Principal {
  readonly subject: string;
  /** The `roles` claim: the caller's role in its personal project `user:{sub}`, and operator roles. */
  readonly roles: readonly Role[];
  /** Team projects and the caller's role in each (the `projects` claim). */
  readonly projects: ReadonlyMap<string, ProjectRole>;
  /** Service principals: the one project they serve (`project` claim), or `*` (`projects: "*"`). */
  readonly serviceProject: string | undefined;
  /** The raw bearer token, to call another service with the caller's credentials. */
  readonly token: string;
}

/** Deadline and cancellation passed to a unit of work (the shape `@autoforge/db` accepts). */
export interface TransactionOptions {
  /** Epoch milliseconds; retries of transient errors stop before it. */
  readonly deadline?: number;
  readonly signal?: AbortSignal;
}

/**
 * What this package needs from a database: units of work that commit when `fn` returns and roll back when
 * it throws. `@autoforge/db`'s `Database` satisfies it structurally.
 */
export interface UnitOfWork<Tx> {
  read<T>(fn: (tx: Tx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  write<T>(fn: (tx: Tx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
}

/** One audit row, as `@autoforge/db`'s `appendAudit(tx, entry)` takes it. */
export interface AuditEntry {
  readonly actor: string;
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly requestId: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

/** The database a server's calls use: its units of work and how to append an audit row inside one. */
export interface DatabaseBinding<Tx> {
  readonly db: UnitOfWork<Tx>;
  readonly appendAudit: (tx: Tx, entry: AuditEntry) => unknown;
}

/** An audit row as a handler describes it; actor and request id are filled in from the call. */
export type AuditInput = Omit<AuditEntry, "actor" | "requestId">;

export interface UnitOfWorkTools {
  /** Appends an audit row in the same transaction (write units of work only). */
  audit(entry: AuditInput): Promise<void>;
}

/** Per-call data, set by the middleware chain. The same object shape on both ports. */
export interface CallContext<Tx = unknown> {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly principal: Principal;
  /**
   * The project the call acts in (the request's `project`, or the caller's default) and the caller's role
   * there, checked against the method's declared access before the handler runs. Operator methods
   * (AdminService) have none: reading it there throws.
   */
  readonly project: ProjectScope;
  /** The `x-request-id` header, or a new UUIDv7. Echoed in the `x-request-id` response header. */
  readonly requestId: string;
  /** Epoch ms: the client's timeout, capped by the server's `maxTimeoutMs` (server streams: uncapped, Infinity without one). */
  readonly deadline: number;
  /** Aborted on deadline, client cancel, or server shutdown. */
  readonly signal: AbortSignal;
  readonly requestHeaders: Headers;
  /** A child logger carrying service, rpc and requestId. */
  readonly logger: Logger;
  /**
   * Runs `fn` in ONE unit of work: a read transaction for NO_SIDE_EFFECTS methods, a write transaction
   * otherwise. It commits when `fn` returns and rolls back when it throws; handlers never commit or roll back.
   * At most once per unary call, unless the service declares the method `stepwise` (one per step of a workflow
   * around another service's call, one at a time). A streaming call may run one per message, one at a time (a batch of a server
   * stream read in its own short transaction, a chunk of a client stream committed as it arrives), never one
   * transaction held open across the stream. Call other services BEFORE it: a network call inside a write
   * transaction would hold the single writer.
   */
  unitOfWork<T>(fn: (tx: Tx, tools: UnitOfWorkTools) => Promise<T>): Promise<T>;
}

export type UnaryHandler<M extends DescMethod, Tx> =
  M extends DescMethodUnary<infer I, infer O>
    ? (request: MessageShape<I>, ctx: CallContext<Tx>) => Promise<MessageInitShape<O>>
    : never;

export type ServerStreamingHandler<M extends DescMethod, Tx> =
  M extends DescMethodServerStreaming<infer I, infer O>
    ? (request: MessageShape<I>, ctx: CallContext<Tx>) => AsyncIterable<MessageInitShape<O>>
    : never;

/**
 * Client streaming: the request messages in order (the first is the one auth and the project were resolved on;
 * each is validated before the handler sees it), then one response. Iterating rejects when the call aborts
 * (client cancel, deadline, shutdown). The end of the iteration is not proof that the client meant to finish:
 * some clients (connect-node) close their request stream when they cancel, and the cancel arrives a moment
 * later. A handler that commits what it received should require an explicit last message in its protocol.
 */
export type ClientStreamingHandler<M extends DescMethod, Tx> =
  M extends DescMethodClientStreaming<infer I, infer O>
    ? (requests: AsyncIterable<MessageShape<I>>, ctx: CallContext<Tx>) => Promise<MessageInitShape<O>>
    : never;

/**
 * One handler per method: unary -> Promise of the response, server-streaming -> AsyncIterable of responses,
 * client-streaming -> AsyncIterable of requests to Promise of the response.
 */
export type ServiceHandlers<S extends DescService, Tx = unknown> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethodUnary
    ? UnaryHandler<S["method"][K], Tx>
    : S["method"][K] extends DescMethodServerStreaming
      ? ServerStreamingHandler<S["method"][K], Tx>
      : S["method"][K] extends DescMethodClientStreaming
        ? ClientStreamingHandler<S["method"][K], Tx>
        : never;
};
