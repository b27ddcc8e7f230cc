// The ceiling: a bare @grpc/grpc-js server answering grpc.health.v1.Health/Check (the official
// grpc-health-check package), nothing else: no auth, no middleware, no database. Same runtime and gRPC
// library as the services' gRPC port. Prints `{"grpcPort":N}` once listening; SIGTERM stops it.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

const server = new grpc.Server();
new HealthImplementation({ "": "SERVING" }).addToServer(server);
server.bindAsync(
  `127.0.0.1:${process.env.GRPC_PORT ?? "0"}`,
  grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    console.log(JSON.stringify({ grpcPort: port }));
  },
);
const stop = () => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
