import type { Logger } from "pino";
import { Gauge, Registry } from "prom-client";
import { type AuthConfig, type Authenticator, createAuthenticator } from "./auth.js";
import { createCallPipeline, createCallTracker } from "./chain.js";
import { createConnectPort } from "./connect-port.js";
import type { DatabaseBinding } from "./context.js";
import type { CorsOptions } from "./cors.js";
import { createGrpcPort } from "./grpc-port.js";
import { createRpcMetrics } from "./metrics.js";
import { createReadiness, databaseProbe, type Readiness, type ReadinessOptions } from "./readiness.js";
import type { RegisteredService } from "./service.js";

export interface ServerLimits {
  /** Largest request or response message, both ports. Default 4 MiB. */
  readonly maxMessageBytes?: number;
  /** Cap for a call's deadline, and the deadline of calls that send none. Default 30 s. */
  readonly maxTimeoutMs?: number;
}

export interface ServerOptions<Tx> {
  /** Registrations from `defineService`. */
  readonly services: readonly RegisteredService<Tx>[];
  /** Token verification: an HS256 secret or a JWKS URL (or a custom authenticator, for tests). */
  readonly auth: AuthConfig | { readonly authenticate: Authenticator };
  /** Units of work and audit; optional for services without a database. */
  readonly database?: DatabaseBinding<Tx>;
  readonly logger: Logger;
  readonly limits?: ServerLimits;
  /** Prometheus registry for the RPC metrics, served at GET /metrics on the Connect port. Default: a new one. */
  readonly metrics?: Registry;
  /** CORS for browser clients on the Connect port (`corsOptionsFromEnv`); default: none (no CORS headers). */
  readonly cors?: CorsOptions | undefined;
  /**
   * Readiness (grpc.health.v1 and `GET /readyz`): a periodic probe, by default of `database` (a read unit of
   * work). Without a database, or with `false`, the server is ready whenever it is serving.
   */
  readonly readiness?: ReadinessOptions | false | undefined;
}

export interface ListenOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly grpcPort: number;
  readonly connectPort: number;
}

export interface Server {
  listen(options: ListenOptions): Promise<{ grpcPort: number; connectPort: number }>;
  /**
   * Health -> NOT_SERVING (every name), /healthz and /readyz -> 503; new calls refused with UNAVAILABLE; streams
   * end (UNAVAILABLE); in-flight unary calls get up to `graceMs` to finish; then every connection is closed.
   */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /** Calls currently running through the chain. */
  readonly inFlight: number;
  readonly metrics: Registry;
}

export const defaultMaxMessageBytes = 4 * 1024 * 1024;
export const defaultMaxTimeoutMs = 30_000;

/** Builds both ports around one middleware chain. The server is NOT listening until `listen`. */
export function createServer<Tx>(options: ServerOptions<Tx>): Server {
  const services = options.services as readonly RegisteredService<unknown>[];
  const names = new Set<string>();
  for (const s of services) {
    if (names.has(s.service.typeName)) throw new Error(`service ${s.service.typeName} registered twice`);
    names.add(s.service.typeName);
  }
  const maxMessageBytes = options.limits?.maxMessageBytes ?? defaultMaxMessageBytes;
  const maxTimeoutMs = options.limits?.maxTimeoutMs ?? defaultMaxTimeoutMs;
  const registry = options.metrics ?? new Registry();
  const tracker = createCallTracker();
  const authenticate =
    "authenticate" in options.auth ? options.auth.authenticate : createAuthenticator(options.auth);
  const pipeline = createCallPipeline({
    logger: options.logger,
    authenticate,
    database: options.database,
    tracker,
    maxTimeoutMs,
    observe: createRpcMetrics(registry),
  });
  const grpcPort = createGrpcPort({ services, pipeline, maxMessageBytes });
  const connectPort = createConnectPort({
    services,
    pipeline,
    maxMessageBytes,
    cors: options.cors,
    routes: {
      "/metrics": async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    },
  });

  // Liveness: /healthz, from listen until shutdown. Readiness: gRPC health and /readyz, also needing the probe.
  let listening = false;
  let stopping = false;
  const readyGauge = new Gauge({
    name: "server_ready",
    help: "1 while this instance is ready (serving, and its database probe passes), else 0",
    registers: [registry],
  });
  const setReady = (ready: boolean) => {
    grpcPort.setServing(ready);
    connectPort.setReady(ready);
    readyGauge.set(ready ? 1 : 0);
  };
  const readinessOptions = options.readiness === false ? undefined : options.readiness;
  const probe =
    readinessOptions?.probe ??
    (options.database === undefined ? undefined : databaseProbe(options.database.db));
  const readiness: Readiness | undefined =
    options.readiness === false || probe === undefined
      ? undefined
      : createReadiness({
          ...readinessOptions,
          probe,
          logger: options.logger,
          onChange: (ready) => {
            if (listening && !stopping) setReady(ready);
          },
        });

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = async (graceMs: number) => {
    const log = options.logger;
    log.info({ inFlight: tracker.inFlight, graceMs }, "shutting down");
    stopping = true;
    readiness?.stop();
    setReady(false);
    connectPort.setServing(false);
    tracker.drain();
    const closed = Promise.all([grpcPort.close(), connectPort.close(), tracker.idle()]);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const outcome = await Promise.race([closed.then(() => "drained" as const), graceOver]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      log.warn({ inFlight: tracker.inFlight }, "grace period over: aborting calls still in flight");
      tracker.abortAll();
    }
    grpcPort.forceClose();
    connectPort.forceClose();
    log.info("stopped");
  };

  return {
    async listen({ host = "127.0.0.1", grpcPort: gp, connectPort: cp }) {
      const [grpc, connect] = await Promise.all([grpcPort.listen(host, gp), connectPort.listen(host, cp)]);
      // the first probe decides the health the ports start with (bounded by its timeout)
      const ready = readiness === undefined ? true : await readiness.check();
      listening = true;
      connectPort.setServing(true);
      setReady(ready);
      readiness?.start();
      options.logger.info({ host, grpcPort: grpc, connectPort: connect }, "listening");
      return { grpcPort: grpc, connectPort: connect };
    },
    shutdown({ graceMs = 10_000 } = {}) {
      shutdownPromise ??= shutdown(graceMs);
      return shutdownPromise;
    },
    get inFlight() {
      return tracker.inFlight;
    },
    metrics: registry,
  };
}
