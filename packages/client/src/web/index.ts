// Browser transports: Connect / gRPC-Web (connect-web, fetch).
export {};
