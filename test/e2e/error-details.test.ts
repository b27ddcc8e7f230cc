/**
 * The google.rpc error details of both services' errors, as real clients decode them from the real
 * processes: a grpc-js client (the `grpc-status-details-bin` trailer) and a Connect client (gRPC protocol)
 * on the gRPC port, a Connect client (Connect protocol) on the Connect port, and grpcurl `-v`. Each error
 * answers the same details to all of them.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { BadRequestSchema, ErrorInfoSchema } from "@autoforge/contracts/google/rpc/error_details";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createGrpcServiceDefinition, type TokenClaims } from "@autoforge/server";
import {
  create,
  type DescMethod,
  type DescService,
  type JsonValue,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it, onTestFinished } from "vitest";
import { connectErrorDetails, detailOf, grpcErrorDetails } from "../support/error-details.js";
import {
  clients,
  must,
  type ServiceProcess,
  signer,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "./harness.js";

const run = promisify(execFile);

/** grpcurl from GRPCURL_BIN, else PATH (CI installs it in .ci/run); missing under CI=true fails the test. */
function findGrpcurl(): string | undefined {
  const given = process.env.GRPCURL_BIN;
  if (given !== undefined && given !== "") return given;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "grpcurl"))) return join(dir, "grpcurl");
  }
  return undefined;
}

interface Answer {
  readonly code: number;
  readonly message: string;
  readonly details: JsonValue[];
}

function metadataOf(headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return md;
}

/** One unary call with grpc-js; resolves with the error's status and decoded details. */
function grpcJsCall<M extends DescMethod>(
  service: DescService,
  port: number,
  method: M,
  request: MessageInitShape<M["input"]>,
  headers: Record<string, string>,
): Promise<Answer> {
  const Ctor = grpc.makeGenericClientConstructor(createGrpcServiceDefinition(service), service.name);
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  onTestFinished(() => client.close());
  const fn = (client as unknown as Record<string, (...args: unknown[]) => void>)[method.name];
  return new Promise((resolve, reject) => {
    fn?.call(
      client,
      create(method.input, request),
      metadataOf(headers),
      { deadline: Date.now() + 20_000 },
      (err: grpc.ServiceError | null) => {
        if (err === null) return reject(new Error(`${method.name} succeeded`));
        try {
          resolve({ code: err.code, message: err.details, details: grpcErrorDetails(err) });
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

async function connectCall<M extends DescMethod>(
  transport: Transport,
  service: DescService,
  method: M,
  request: MessageInitShape<M["input"]>,
  headers: Record<string, string>,
): Promise<Answer & { error: ConnectError }> {
  const client = createClient(service, transport) as unknown as Record<
    string,
    (req: unknown, opts: unknown) => Promise<unknown>
  >;
  try {
    await client[method.localName]?.(request, { headers, timeoutMs: 20_000 });
  } catch (e) {
    const error = ConnectError.from(e);
    return { code: error.code, message: error.rawMessage, details: connectErrorDetails(error), error };
  }
  throw new Error(`${method.name} succeeded`);
}

/**
 * The same failing call through grpc-js and a Connect client (gRPC) on the gRPC port, and a Connect client
 * (Connect protocol) on the Connect port: all must answer the same status and details, and the same message
 * unless `sameMessage` is false (an outage: the first call's retries open the circuit breaker, so later calls
 * fail fast with the breaker's message).
 */
async function everywhere<M extends DescMethod>(
  target: ServiceProcess,
  service: DescService,
  method: M,
  request: MessageInitShape<M["input"]>,
  claims: TokenClaims,
  { sameMessage = true }: { sameMessage?: boolean } = {},
): Promise<Answer & { errors: ConnectError[] }> {
  const headers = { authorization: `Bearer ${await signer.signToken({ ttl: "1h", ...claims })}` };
  const viaGrpcJs = await grpcJsCall(service, target.grpcPort, method, request, headers);
  const errors: ConnectError[] = [];
  const transports = {
    "connect-es gRPC on the gRPC port": createGrpcTransport({ baseUrl: target.url }),
    "connect-es Connect on the Connect port": createConnectTransport({
      baseUrl: `http://127.0.0.1:${target.connectPort}`,
      httpVersion: "1.1",
    }),
  };
  for (const [where, transport] of Object.entries(transports)) {
    const { error, ...answer } = await connectCall(transport, service, method, request, headers);
    if (sameMessage) expect(answer, where).toEqual(viaGrpcJs);
    else expect({ ...answer, message: "" }, where).toEqual({ ...viaGrpcJs, message: "" });
    errors.push(error);
  }
  return { ...viaGrpcJs, errors };
}

const errorInfo = (reason: string, metadata?: Record<string, string>) => ({
  "@type": "type.googleapis.com/google.rpc.ErrorInfo",
  reason,
  domain: "autoforge.dev",
  ...(metadata === undefined ? {} : { metadata }),
});

const alice: TokenClaims = { sub: "alice", roles: ["user"] };
const { recordTestResults, createEvaluation, startEvaluation } = EvaluationService.method;
const { createPrompt, updatePrompt, getPrompt, setPromptLabel } = PromptService.method;

describe("error details through real clients and grpcurl", () => {
  it("each detail type round-trips through grpc-js, connect-es and grpcurl; BadRequest lists every violation", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    const api = await clients(prompts.url).prompts("alice");
    const evalApi = await clients(evaluations.url).evaluations("alice");

    // BadRequest: three bad fields of one request, each named (not only the first)
    const badResults = {
      evaluationId: "not-a-uuid",
      results: [
        { name: "first", score: 1.5 },
        { name: "", score: 0.5 },
      ],
    };
    const bad = await everywhere(evaluations, EvaluationService, recordTestResults, badResults, alice);
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.details).toEqual([
      errorInfo("INVALID_ARGUMENT"),
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: [
          { field: "evaluation_id", description: "must be a UUID" },
          { field: "results[0].score", description: "must be between 0 and 1" },
          { field: "results[1].name", description: expect.stringMatching(/^must be 1 to \d+ characters$/) },
        ],
      },
    ]);
    for (const error of bad.errors) {
      expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations).toHaveLength(3);
    }

    // ResourceInfo on NOT_FOUND
    const missingId = "01890000-0000-7000-8000-000000000000";
    const missing = await everywhere(prompts, PromptService, getPrompt, { id: missingId }, alice);
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.details).toEqual([
      errorInfo("PROMPT_NOT_FOUND", { prompt: missingId }),
      {
        "@type": "type.googleapis.com/google.rpc.ResourceInfo",
        resourceType: "autoforge.prompt.v1.Prompt",
        resourceName: missingId,
      },
    ]);

    // ErrorInfo NAME_TAKEN with its metadata
    const prompt = must((await api.createPrompt({ name: "greeting", title: "Hi", content: "Hello" })).prompt);
    const taken = await everywhere(
      prompts,
      PromptService,
      createPrompt,
      { name: "greeting", title: "Again", content: "x" },
      alice,
    );
    expect(taken.code).toBe(Code.AlreadyExists);
    expect(detailOf(taken.details, "ErrorInfo")).toEqual(
      errorInfo("NAME_TAKEN", { kind: "prompt", name: "greeting", project: "user:alice" }),
    );

    // STALE_ETAG: ABORTED with a PreconditionFailure of type ETAG
    const stale = await everywhere(
      prompts,
      PromptService,
      updatePrompt,
      { id: prompt.id, etag: "stale", updateMask: { paths: ["title"] }, title: "New" },
      alice,
    );
    expect(stale.code).toBe(Code.Aborted);
    expect(stale.details).toEqual([
      errorInfo("STALE_ETAG", { prompt: prompt.id }),
      {
        "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
        violations: [{ type: "ETAG", subject: prompt.id, description: stale.message }],
      },
    ]);

    // LABEL_PROTECTED: an editor may not move `production`
    const protectedLabel = await everywhere(
      prompts,
      PromptService,
      setPromptLabel,
      { id: prompt.id, label: "production", version: 1 },
      alice,
    );
    expect(protectedLabel.code).toBe(Code.PermissionDenied);
    for (const error of protectedLabel.errors) {
      expect(error.findDetails(ErrorInfoSchema)[0]).toMatchObject({
        reason: "LABEL_PROTECTED",
        metadata: { label: "production", requiredRole: "publisher" },
      });
    }

    // A state precondition: results are recorded only while the evaluation runs
    const evaluation = must(
      (await evalApi.createEvaluation({ promptId: prompt.id, provider: "openai", model: "gpt-4o" }))
        .evaluation,
    );
    const notRunning = await everywhere(
      evaluations,
      EvaluationService,
      recordTestResults,
      { evaluationId: evaluation.id, results: [{ name: "t", score: 1 }] },
      alice,
    );
    expect(notRunning.code).toBe(Code.FailedPrecondition);
    expect(notRunning.details).toEqual([
      errorInfo("EVALUATION_NOT_RUNNING", { evaluation: evaluation.id, status: "PENDING" }),
      {
        "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
        violations: [{ type: "STATE", subject: evaluation.id, description: notRunning.message }],
      },
    ]);
    await evalApi.startEvaluation({ id: evaluation.id });
    const twice = await everywhere(
      evaluations,
      EvaluationService,
      startEvaluation,
      { id: evaluation.id },
      alice,
    );
    expect(detailOf(twice.details, "ErrorInfo")).toMatchObject({ reason: "EVALUATION_STATE" });

    // grpcurl -v prints the details it decodes from grpc-status-details-bin
    const grpcurl = findGrpcurl();
    if (grpcurl === undefined) {
      if (process.env.CI === "true") throw new Error("grpcurl is missing: .ci/run installs it (GRPCURL_BIN)");
    } else {
      const token = await signer.signToken({ ttl: "1h", ...alice });
      const out = await run(
        grpcurl,
        [
          "-plaintext",
          "-v",
          "-H",
          `authorization: Bearer ${token}`,
          "-d",
          JSON.stringify(badResults),
          `127.0.0.1:${evaluations.grpcPort}`,
          "autoforge.evaluation.v1.EvaluationService/RecordTestResults",
        ],
        { timeout: 20_000 },
      ).then(
        () => {
          throw new Error("grpcurl: the call succeeded");
        },
        (e: { stdout: string; stderr: string }) => `${e.stdout}\n${e.stderr}`,
      );
      expect(out).toContain("Code: InvalidArgument");
      expect(out).toContain("Details:");
      // decoded with the types the gRPC port's reflection serves, not shown as raw bytes
      expect(out).not.toContain("is not recognized");
      expect(out).toContain('"@type": "type.googleapis.com/google.rpc.BadRequest"');
      for (const field of ["evaluation_id", "results[0].score", "results[1].name"]) {
        expect(out).toContain(`"field": "${field}"`);
      }
      expect(out).toContain('"reason": "INVALID_ARGUMENT"');
    }

    // RetryInfo on UNAVAILABLE: prompt-service is gone, evaluation-service cannot check the prompt
    await prompts.kill();
    const down = await everywhere(
      evaluations,
      EvaluationService,
      createEvaluation,
      { promptId: prompt.id, provider: "openai", model: "gpt-4o" },
      alice,
      { sameMessage: false },
    );
    expect(down.code).toBe(Code.Unavailable);
    for (const error of down.errors) expect(error.rawMessage).toMatch(/^prompt-service unavailable: /);
    expect(down.details).toEqual([
      errorInfo("DEPENDENCY_UNAVAILABLE", { dependency: "prompt-service" }),
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1s" },
    ]);
  }, 120_000);
});
