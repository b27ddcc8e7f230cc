// Node transports: Connect / gRPC-Web / gRPC over connect-node, and gRPC over @grpc/grpc-js; createNodeClient;
// the prompt cache's file store (node:fs).
export { createFileStore } from "./file-store.js";
export {
  createGrpcJsTransport,
  type GrpcJsTransport,
  type GrpcJsTransportOptions,
} from "./grpc-transport.js";
export { createNodeClient, type NodeClientOptions } from "./node-client.js";
export {
  connectTransport,
  grpcTransport,
  type NodeConnectTransportOptions,
  type NodeTransport,
} from "./transports.js";
