/**
 * @autoforge/client against the real services (OS processes of test/e2e/harness.ts), over each transport it
 * offers. Every client made here is closed after the test.
 */
import { join } from "node:path";
import {
  type AutoforgeClient,
  type AutoforgeClientOptions,
  createAutoforgeClient,
  type Interceptor,
} from "@autoforge/client";
import { createNodeClient } from "@autoforge/client/node";
import { connectTransport as webTransport } from "@autoforge/client/web";
import type { TokenClaims } from "@autoforge/server";
import { onTestFinished } from "vitest";
import { type ServiceProcess, signer, startService } from "../e2e/harness.js";

export type TransportKind = "connect" | "grpc" | "grpc-web" | "connect-web";

/**
 * connect: Connect protocol by connect-node on the Connect port; grpc: @grpc/grpc-js on the gRPC port;
 * grpc-web: connect-node on the Connect port; connect-web: fetch (the browser transport, run in Node) there.
 */
export const transportKinds: TransportKind[] = ["connect", "grpc", "grpc-web", "connect-web"];

export function addressOf(kind: TransportKind, service: ServiceProcess): string {
  return kind === "grpc" ? service.url : `http://127.0.0.1:${service.connectPort}`;
}

export type ClientExtras = Omit<AutoforgeClientOptions, "transport" | "transports" | "token">;

/** A client of prompt-service (and evaluation-service, when given) as `claims`, over `kind`. */
export function clientFor(
  kind: TransportKind,
  services: { prompt: ServiceProcess; evaluation?: ServiceProcess },
  token: TokenClaims | AutoforgeClientOptions["token"],
  extras: ClientExtras = {},
): AutoforgeClient {
  const tokenSource =
    typeof token === "object" && "sub" in token ? () => signer.signToken({ ttl: "1h", ...token }) : token;
  const main = addressOf(kind, services.prompt);
  const evaluation = services.evaluation === undefined ? undefined : addressOf(kind, services.evaluation);
  let client: AutoforgeClient;
  if (kind === "connect-web") {
    client = createAutoforgeClient({
      ...extras,
      token: tokenSource,
      transport: webTransport({ baseUrl: main }),
      transports: evaluation === undefined ? {} : { evaluation: webTransport({ baseUrl: evaluation }) },
    });
  } else {
    client = createNodeClient({
      ...extras,
      token: tokenSource,
      baseUrl: main,
      protocol: kind,
      endpoints: evaluation === undefined ? {} : { evaluation },
    });
  }
  onTestFinished(() => client.close());
  return client;
}

/** Restarts prompt-service on both of its previous ports and database (after a kill). */
export function restartPromptService(dir: string, previous: ServiceProcess): Promise<ServiceProcess> {
  return startService("prompt-service", {
    DATABASE_URL: `file:${join(dir, "prompt-service.db")}`,
    GRPC_PORT: String(previous.grpcPort),
    CONNECT_PORT: String(previous.connectPort),
  });
}

/** Counts attempts per method (a client interceptor: it runs once per attempt, after the token). */
export function attemptCounter() {
  const attempts: { method: string; message: Record<string, unknown> }[] = [];
  const interceptor: Interceptor = (next) => (req) => {
    attempts.push({ method: req.method.name, message: { ...(req.message as Record<string, unknown>) } });
    return next(req);
  };
  return {
    interceptor,
    attempts,
    count: (method: string) => attempts.filter((a) => a.method === method).length,
  };
}
