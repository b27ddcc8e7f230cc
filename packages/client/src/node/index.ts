// Node transports: Connect (connect-node) and gRPC (@grpc/grpc-js).
export {};
