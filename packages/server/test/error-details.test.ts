/**
 * The google.rpc error details (AIP-193) of one handler's errors, read back by real clients on both ports:
 * grpc-js on the gRPC port (the `grpc-status-details-bin` trailer), connect-es with each protocol of the
 * Connect port (ConnectError.findDetails). Every detail type the services send, and the same details on all
 * four.
 */
import { AdminService, ListAuditEventsRequestSchema } from "@autoforge/contracts/admin/v1";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "@autoforge/contracts/google/rpc/error_details";
import { PromptService, WatchPromptEventsRequestSchema } from "@autoforge/contracts/prompt/v1";
import { create, type JsonValue, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { connectErrorDetails, detailOf, grpcErrorDetails } from "../../../test/support/error-details.js";
import { rawCall } from "../../../test/support/raw-rpc.js";
import {
  AbortedError,
  access,
  createValidators,
  defineService,
  defineValidator,
  errorDomain,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from "../src/index.js";
import {
  bearer,
  connectTransport,
  grpcClient,
  type Protocol,
  startTestServer,
  type TestServer,
  testAdminHandlers,
  testPromptService,
} from "./helpers.js";

const { listAuditEvents } = AdminService.method;
type ListRequest = MessageInitShape<typeof ListAuditEventsRequestSchema>;

/** ListAuditEvents fails as `resource_type` asks; its validator has three independent field rules. */
function detailedAdminService() {
  const base = testAdminHandlers({ calls: {} });
  return defineService({
    service: AdminService,
    validators: createValidators(
      defineValidator(
        ListAuditEventsRequestSchema,
        {
          pageSize: z.int().min(0).max(100, "must be at most 100"),
          actor: z.string().max(8, "at most 8 characters"),
          resourceId: z.string().regex(/^[a-z0-9-]*$/, "must match [a-z0-9-]*"),
        },
        (m, v) => {
          if (m.pageToken !== "" && m.pageSize === 0)
            v.add("page_token", "needs page_size", "PAGE_SIZE_REQUIRED");
        },
      ),
    ),
    handlers: {
      ...base,
      async listAuditEvents(req, ctx) {
        switch (req.resourceType) {
          case "missing":
            throw new NotFoundError(`prompt ${req.resourceId} not found`, {
              type: "autoforge.prompt.v1.Prompt",
              name: req.resourceId,
            });
          case "stale":
            throw new AbortedError("etag is stale", {
              reason: "STALE_ETAG",
              metadata: { prompt: req.resourceId },
              preconditionViolations: [
                { type: "ETAG", subject: req.resourceId, description: "etag is stale" },
              ],
            });
          case "down":
            throw new UnavailableError("the database is busy");
          case "limited":
            throw new ResourceExhaustedError("too many calls", {
              reason: "RATE_LIMITED",
              retryDelayMs: 2500,
            });
          case "boom":
            throw new Error("secret database password in this message");
          default:
            return base.listAuditEvents(req, ctx);
        }
      },
    },
    access: { default: access.operator("admin") },
  });
}

let t: TestServer;
let headers: Record<string, string>;
beforeAll(async () => {
  t = await startTestServer({ services: () => [detailedAdminService(), testPromptService()] });
  headers = await bearer("alice", ["admin"]);
});
afterAll(async () => {
  await t.server.shutdown({ graceMs: 1_000 });
});

interface Answer {
  code: number;
  message: string;
  details: JsonValue[];
}

function viaGrpcJs(request: ListRequest): Promise<Answer> {
  const client = grpcClient(AdminService, t.grpcPort);
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...args: unknown[]) => void>)[listAuditEvents.name];
    fn?.call(
      client,
      create(listAuditEvents.input, request),
      metadata,
      { deadline: Date.now() + 10_000 },
      (err: grpc.ServiceError | null) => {
        if (err === null) reject(new Error("the call succeeded"));
        else {
          try {
            resolve({ code: err.code, message: err.details, details: grpcErrorDetails(err) });
          } catch (e) {
            reject(e);
          }
        }
      },
    );
  });
}

async function viaConnect(
  protocol: Protocol,
  request: ListRequest,
): Promise<Answer & { error: ConnectError }> {
  const client = createClient(AdminService, connectTransport(protocol, t.connectPort));
  try {
    await client.listAuditEvents(request, { headers, timeoutMs: 10_000 });
  } catch (e) {
    const error = ConnectError.from(e);
    return { code: error.code, message: error.rawMessage, details: connectErrorDetails(error), error };
  }
  throw new Error("the call succeeded");
}

const protocols: Protocol[] = ["connect", "grpc-web", "grpc-h2c"];

/** The answer of every port and protocol, after checking they are all the same. */
async function everywhere(request: ListRequest): Promise<{ answer: Answer; errors: ConnectError[] }> {
  const answer = await viaGrpcJs(request);
  const errors: ConnectError[] = [];
  for (const protocol of protocols) {
    const { error, ...rest } = await viaConnect(protocol, request);
    expect(rest, protocol).toEqual(answer);
    errors.push(error);
  }
  return { answer, errors };
}

const errorInfo = (reason: string, metadata: Record<string, string> = {}) => ({
  "@type": "type.googleapis.com/google.rpc.ErrorInfo",
  reason,
  domain: errorDomain,
  ...(Object.keys(metadata).length === 0 ? {} : { metadata }),
});

describe("error details on both ports", () => {
  it("BadRequest lists every violation of a request with three bad fields, plus ErrorInfo", async () => {
    const { answer, errors } = await everywhere({
      pageSize: 1000,
      actor: "much-too-long",
      resourceId: "Bad Id",
    });
    expect(answer.code).toBe(Code.InvalidArgument);
    expect(answer.details).toEqual([
      errorInfo("INVALID_ARGUMENT"),
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: [
          { field: "page_size", description: "must be at most 100" },
          { field: "actor", description: "at most 8 characters" },
          { field: "resource_id", description: "must match [a-z0-9-]*" },
        ],
      },
    ]);
    expect(answer.message).toBe(
      "page_size: must be at most 100; actor: at most 8 characters; resource_id: must match [a-z0-9-]*",
    );
    for (const error of errors) {
      expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual([
        "page_size",
        "actor",
        "resource_id",
      ]);
    }
  });

  it("a cross-field rule's violation comes with the field rules' ones, with its own reason", async () => {
    const { answer } = await everywhere({ pageToken: "abc", actor: "much-too-long" });
    expect(detailOf(answer.details, "BadRequest")?.fieldViolations).toEqual([
      { field: "actor", description: "at most 8 characters" },
      { field: "page_token", description: "needs page_size", reason: "PAGE_SIZE_REQUIRED" },
    ]);
  });

  it("NOT_FOUND carries ResourceInfo", async () => {
    const { answer, errors } = await everywhere({ resourceType: "missing", resourceId: "p1" });
    expect(answer).toMatchObject({ code: Code.NotFound, message: "prompt p1 not found" });
    expect(answer.details).toEqual([
      errorInfo("NOT_FOUND"),
      {
        "@type": "type.googleapis.com/google.rpc.ResourceInfo",
        resourceType: "autoforge.prompt.v1.Prompt",
        resourceName: "p1",
      },
    ]);
    for (const error of errors) {
      expect(error.findDetails(ResourceInfoSchema)[0]).toMatchObject({ resourceName: "p1" });
    }
  });

  it("a stale etag is ABORTED with ErrorInfo STALE_ETAG (metadata) and a PreconditionFailure", async () => {
    const { answer, errors } = await everywhere({ resourceType: "stale", resourceId: "p1" });
    expect(answer.code).toBe(Code.Aborted);
    expect(answer.details).toEqual([
      errorInfo("STALE_ETAG", { prompt: "p1" }),
      {
        "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
        violations: [{ type: "ETAG", subject: "p1", description: "etag is stale" }],
      },
    ]);
    for (const error of errors) {
      expect(error.findDetails(ErrorInfoSchema)[0]).toMatchObject({
        reason: "STALE_ETAG",
        domain: errorDomain,
      });
      expect(error.findDetails(PreconditionFailureSchema)[0]?.violations[0]?.type).toBe("ETAG");
    }
  });

  it("UNAVAILABLE carries RetryInfo (default delay); RESOURCE_EXHAUSTED the thrower's delay", async () => {
    const down = await everywhere({ resourceType: "down" });
    expect(down.answer.code).toBe(Code.Unavailable);
    expect(down.answer.details).toEqual([
      errorInfo("UNAVAILABLE"),
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1s" },
    ]);
    const limited = await everywhere({ resourceType: "limited" });
    expect(limited.answer.code).toBe(Code.ResourceExhausted);
    expect(limited.answer.details).toEqual([
      errorInfo("RATE_LIMITED"),
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2.500s" },
    ]);
    for (const error of limited.errors) {
      expect(error.findDetails(RetryInfoSchema)[0]?.retryDelay).toMatchObject({
        seconds: 2n,
        nanos: 500_000_000,
      });
    }
  });

  it("INTERNAL carries only ErrorInfo INTERNAL: nothing of the cause", async () => {
    const { answer } = await everywhere({ resourceType: "boom" });
    expect(answer).toEqual({
      code: Code.Internal,
      message: "internal error",
      details: [errorInfo("INTERNAL")],
    });
  });

  it("a request that does not decode carries ErrorInfo REQUEST_UNDECODABLE on both ports", async () => {
    // field 3 (actor, a string) whose length runs past the end of the message
    const body = new Uint8Array([0x1a, 0x7f]);
    const path = `${AdminService.typeName}/${listAuditEvents.name}`;
    const targets = [
      { port: t.grpcPort, protocol: "grpc" },
      { port: t.connectPort, protocol: "grpc" },
      { port: t.connectPort, protocol: "grpc-web" },
      { port: t.connectPort, protocol: "connect-proto" },
    ] as const;
    for (const { port, protocol } of targets) {
      const answer = await rawCall({
        baseUrl: `http://127.0.0.1:${port}`,
        path,
        protocol,
        body,
        streaming: false,
        headers,
      });
      const where = `${protocol} on ${port === t.grpcPort ? "the gRPC" : "the Connect"} port`;
      expect(answer.code, where).toBe(Code.InvalidArgument);
      expect(answer.details, where).toEqual([errorInfo("REQUEST_UNDECODABLE")]);
    }
  });

  it("a server stream's error carries them too (UNAUTHENTICATED: no token)", async () => {
    const client = grpcClient(PromptService, t.grpcPort);
    const viaGrpcJs = await new Promise<Answer>((resolve, reject) => {
      const stream = client.makeServerStreamRequest(
        `/${PromptService.typeName}/${PromptService.method.watchPromptEvents.name}`,
        (m: Uint8Array) => Buffer.from(m),
        (b: Buffer) => b,
        toBinary(WatchPromptEventsRequestSchema, create(WatchPromptEventsRequestSchema)),
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
      );
      stream.on("data", () => reject(new Error("a message arrived")));
      stream.on("error", (err: grpc.ServiceError) => {
        try {
          resolve({ code: err.code, message: err.details, details: grpcErrorDetails(err) });
        } catch (e) {
          reject(e);
        }
      });
    });
    expect(viaGrpcJs).toEqual({
      code: Code.Unauthenticated,
      message: "missing bearer token",
      details: [errorInfo("UNAUTHENTICATED")],
    });
    for (const protocol of protocols) {
      const watch = createClient(PromptService, connectTransport(protocol, t.connectPort)).watchPromptEvents(
        {},
      );
      const error = await (async () => {
        try {
          for await (const _ of watch) return new Error("a message arrived");
        } catch (e) {
          return ConnectError.from(e);
        }
        return new Error("the stream ended");
      })();
      expect(error, protocol).toBeInstanceOf(ConnectError);
      expect(connectErrorDetails(error as ConnectError), protocol).toEqual(viaGrpcJs.details);
    }
  });

  it("strict JSON that does not decode names every bad field in a BadRequest", async () => {
    const answer = await rawCall({
      baseUrl: `http://127.0.0.1:${t.connectPort}`,
      path: `${AdminService.typeName}/${listAuditEvents.name}`,
      protocol: "connect-json",
      body: JSON.stringify({ colour: "red", pageSize: "many", actor: "a" }),
      streaming: false,
      headers,
    });
    expect(answer.code).toBe(Code.InvalidArgument);
    expect(answer.details[0]).toEqual(errorInfo("REQUEST_UNDECODABLE"));
    const violations = detailOf(answer.details, "BadRequest")?.fieldViolations as { field: string }[];
    expect(violations.map((v) => v.field)).toEqual(["colour", "page_size"]);
    expect(answer.message).toMatch(/^request could not be decoded: colour: unknown field; page_size: /);
  });
});
