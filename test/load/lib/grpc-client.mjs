// A small unary gRPC client for seeding: @grpc/grpc-js (cheaper per call than a connect-node client, see
// docs/stack.md) with protobuf-es messages, using only the public contracts. One HTTP/2 connection per client.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

export class UnaryClient {
  /** @param {string} address host:port */
  constructor(address) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
    });
    this.metadata = new Map();
  }

  #metadataFor(token) {
    let md = this.metadata.get(token);
    if (md === undefined) {
      md = new grpc.Metadata();
      md.set("authorization", `Bearer ${token}`);
      this.metadata.set(token, md);
    }
    return md;
  }

  /** Calls `service.method` with `request` (an init object for the input message) as `token`'s owner. */
  call(service, methodName, request, token, timeoutMs = 30_000) {
    const method = service.method[methodName];
    if (method === undefined) throw new Error(`${service.typeName} has no method ${methodName}`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${service.typeName}/${method.name}`,
        (m) => Buffer.from(toBinary(method.input, m)),
        (b) => fromBinary(method.output, b),
        create(method.input, request),
        this.#metadataFor(token),
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err) {
            err.message = `${service.typeName}/${method.name}: ${err.message}`;
            reject(err);
          } else resolve(response);
        },
      );
    });
  }

  close() {
    this.client.close();
  }
}

/** Runs `task(item, index)` over `items` with at most `concurrency` in flight; rejects on the first failure. */
export async function pool(items, concurrency, task, onProgress) {
  let next = 0;
  let done = 0;
  let failed;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await task(items[i], i);
      } catch (e) {
        failed ??= e;
        return;
      }
      done++;
      onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/** Retries a call on transient codes (UNAVAILABLE, ABORTED from a concurrent change is NOT retried). */
export async function withRetry(fn, attempts = 5) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const transient = e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.RESOURCE_EXHAUSTED;
      if (!transient || i >= attempts) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** i));
    }
  }
}
