import type { Transport } from "@connectrpc/connect";
import {
  type AutoforgeClient,
  type AutoforgeClientOptions,
  createAutoforgeClient,
  type ServiceName,
} from "../client.js";
import { connectTransport, grpcTransport, type NodeTransport } from "./transports.js";

export interface NodeClientOptions extends Omit<AutoforgeClientOptions, "transport" | "transports"> {
  /** The service to call, e.g. http://127.0.0.1:8081 (Connect port) or http://127.0.0.1:50051 (gRPC port). */
  baseUrl?: string;
  /** The same as baseUrl; `host:port` is accepted too (plaintext). */
  address?: string;
  /** "connect" (default) and "grpc-web" over connect-node; "grpc" over @grpc/grpc-js. */
  protocol?: "connect" | "grpc-web" | "grpc";
  /** Connect and gRPC-Web only; see connectTransport. */
  httpVersion?: "1.1" | "2";
  /** Per-service addresses when the services listen apart (evaluation-service: its own port). */
  endpoints?: Partial<Record<ServiceName, string>>;
}

/**
 * {@link createAutoforgeClient} over transports it makes and owns: `close()` also closes their connections.
 * One transport per distinct address.
 */
export function createNodeClient(options: NodeClientOptions): AutoforgeClient {
  const { baseUrl, address, protocol = "connect", httpVersion, endpoints, ...rest } = options;
  const main = baseUrl ?? address;
  if (main === undefined || main === "")
    throw new Error("createNodeClient: baseUrl (or address) is required");
  const owned = new Map<string, NodeTransport>();
  const transportFor = (target: string): Transport => {
    let transport = owned.get(target);
    if (transport === undefined) {
      transport =
        protocol === "grpc"
          ? grpcTransport({ address: target })
          : connectTransport({
              baseUrl: /^https?:\/\//.test(target) ? target : `http://${target}`,
              protocol,
              ...(httpVersion === undefined ? {} : { httpVersion }),
            });
      owned.set(target, transport);
    }
    return transport;
  };
  const transports: Partial<Record<ServiceName, Transport>> = {};
  for (const [service, target] of Object.entries(endpoints ?? {}) as [ServiceName, string | undefined][]) {
    if (target !== undefined && target !== "") transports[service] = transportFor(target);
  }
  const client = createAutoforgeClient({ ...rest, transport: transportFor(main), transports });
  return {
    promptService: client.promptService,
    evaluationService: client.evaluationService,
    datasetService: client.datasetService,
    promotionService: client.promotionService,
    adminService: client.adminService,
    get prompts() {
      return client.prompts;
    },
    tokens: client.tokens,
    async close() {
      try {
        await client.close();
      } finally {
        for (const transport of owned.values()) transport.close();
      }
    },
  };
}
