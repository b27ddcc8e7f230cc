/**
 * Seeded, bounded fuzzing of every RPC of both services (PromptService, EvaluationService and the
 * AdminService each serves) on the gRPC port and on the Connect port with each of its protocols: random
 * bytes, mutated valid messages, bad wire types, strings that are not UTF-8, truncated frames, unknown JSON
 * fields and enum names, JSON that is not JSON. No answer may be INTERNAL or UNKNOWN; every request that
 * does not decode is INVALID_ARGUMENT with an ErrorInfo or BadRequest detail. The same seed sends the same
 * requests.
 */
import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { detailOf } from "../support/error-details.js";
import { type RawAnswer, type RawProtocol, type RawRequest, rawCall } from "../support/raw-rpc.js";
import { Code, signer, startEvaluationService, startPromptService, tempDir } from "./harness.js";

const seed = Number(process.env.FUZZ_SEED ?? 20_261_302);
/** Requests per (service, port/protocol, method). */
const perMethod = 6;

/** mulberry32: a tiny seeded PRNG. */
function prng(s: number) {
  let a = s >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    bytes: (n: number) => Uint8Array.from({ length: n }, () => int(256)),
  };
}
type Rng = ReturnType<typeof prng>;

/** A plausible valid message: scalar strings, numbers, bools and enums filled at random. */
function sample(schema: DescMessage, rng: Rng): Uint8Array {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (rng.int(2) === 0) continue;
    if (field.fieldKind === "enum") {
      init[field.localName] = rng.pick(field.enum.values).number;
    } else if (field.fieldKind === "scalar") {
      const t = field.scalar;
      if (t === 9) init[field.localName] = `v${rng.int(1_000)}`;
      else if (t === 8) init[field.localName] = rng.int(2) === 1;
      else if (t === 12) init[field.localName] = rng.bytes(4);
      else if ([3, 4, 6, 16, 18].includes(t)) init[field.localName] = BigInt(rng.int(100));
      else init[field.localName] = rng.int(100);
    }
  }
  return toBinary(schema, create(schema, init as never));
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A binary body of one of the kinds the issue reported. */
function binaryBody(schema: DescMessage, rng: Rng): Uint8Array {
  switch (rng.int(5)) {
    case 0:
      return rng.bytes(1 + rng.int(24));
    case 1: {
      // Bad wire type (6 or 7, or a group end without start) on a random field number.
      const wire = rng.pick([4, 6, 7]);
      return Uint8Array.from([...varint(((1 + rng.int(30)) << 3) | wire), ...rng.bytes(rng.int(4))]);
    }
    case 2: {
      // A string field holding bytes that are not UTF-8 (a lone surrogate, a stray continuation byte).
      const strings = schema.fields.filter((f) => f.fieldKind === "scalar" && f.scalar === 9);
      const no = strings.length > 0 ? rng.pick(strings).number : 1;
      const bad = rng.pick([[0xed, 0xa0, 0x80], [0x80], [0xc3, 0x28], [0xff, 0xfe]]);
      return Uint8Array.from([...varint((no << 3) | 2), bad.length, ...bad]);
    }
    case 3: {
      // A valid message with a few bytes flipped.
      const valid = sample(schema, rng);
      const out = valid.length > 0 ? Uint8Array.from(valid) : rng.bytes(3);
      for (let i = 0; i <= rng.int(3); i++) out[rng.int(out.length)] = rng.int(256);
      return out;
    }
    default: {
      // A length-delimited field whose length runs past the end.
      return Uint8Array.from([...varint(((1 + rng.int(30)) << 3) | 2), 20 + rng.int(100), ...rng.bytes(3)]);
    }
  }
}

/** A JSON body: unknown fields, unknown enum names, wrong types, not JSON, not UTF-8. */
function jsonBody(schema: DescMessage, rng: Rng): Uint8Array | string {
  const valid = JSON.parse(toJsonString(schema, fromBinary(schema, sample(schema, rng)))) as Record<
    string,
    unknown
  >;
  const enums = schema.fields.filter((f) => f.fieldKind === "enum");
  switch (rng.int(5)) {
    case 0:
      return JSON.stringify({ ...valid, [`colour${rng.int(100)}`]: "red" });
    case 1: {
      const field = enums.length > 0 ? rng.pick(enums) : undefined;
      if (field === undefined) return JSON.stringify({ ...valid, unknownField: 1 });
      return JSON.stringify({ ...valid, [field.jsonName]: `${field.enum.values[0]?.name ?? "X"}_TYPO` });
    }
    case 2: {
      const field = schema.fields[rng.int(schema.fields.length)];
      if (field === undefined) return "[]";
      return JSON.stringify({
        [field.jsonName]: rng.pick([{ nested: true }, [1, "x"], "not-a-number", -1.5]),
      });
    }
    case 3:
      return rng.pick(["{", "not json", '{"a":}', "", "null", "[]"]);
    default:
      return Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]);
  }
}

function decodes(method: DescMethod, protocol: RawProtocol, body: Uint8Array | string): boolean {
  try {
    if (protocol === "connect-json") {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(
        typeof body === "string" ? new TextEncoder().encode(body) : body,
      );
      fromJsonString(method.input, text, { ignoreUnknownFields: false });
    } else {
      fromBinary(method.input, typeof body === "string" ? new TextEncoder().encode(body) : body);
    }
    return true;
  } catch {
    return false;
  }
}

interface Target {
  readonly name: string;
  readonly protocol: RawProtocol;
  readonly baseUrl: string;
}

interface Case {
  readonly target: Target;
  readonly service: DescService;
  readonly request: RawRequest;
  /** False when the request does not decode: the answer must be INVALID_ARGUMENT. */
  readonly decodable: boolean;
}

function cases(services: readonly DescService[], targets: readonly Target[], authorization: string): Case[] {
  const rng = prng(seed);
  const out: Case[] = [];
  for (const service of services) {
    for (const target of targets) {
      for (const method of service.methods) {
        // Client streams too: the Connect protocol frames their one message (a bare `application/json` body
        // is no Connect client stream, and connect-node answers it 415 without a body).
        const streaming = method.methodKind !== "unary";
        for (let i = 0; i < perMethod; i++) {
          const body =
            target.protocol === "connect-json" ? jsonBody(method.input, rng) : binaryBody(method.input, rng);
          // Now and then a truncated frame (framed protocols) or no token at all.
          const framed = target.protocol === "grpc" || target.protocol === "grpc-web" || streaming;
          const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
          const truncate = framed && target.name !== "gRPC port" && bytes.length > 0 && rng.int(8) === 0;
          const headers: Record<string, string> = {
            // Requests that decode may start a change feed: end it soon.
            ...(streaming ? { "grpc-timeout": "300m", "connect-timeout-ms": "300" } : {}),
            ...(rng.int(10) === 0 ? {} : { authorization }),
          };
          out.push({
            target,
            service,
            // A frame cut short is answered by the transport libraries themselves, before any decoding
            // (grpc-js and connect-node: UNIMPLEMENTED "missing input message"): only "not INTERNAL/UNKNOWN".
            decodable: truncate || decodes(method, target.protocol, body),
            request: {
              baseUrl: target.baseUrl,
              path: `${service.typeName}/${method.name}`,
              protocol: target.protocol,
              body,
              streaming,
              headers,
              // One byte short of the whole frame (a frame with a message in it).
              ...(truncate ? { truncateTo: 4 + bytes.length } : {}),
            },
          });
        }
      }
    }
  }
  return out;
}

async function runAll(all: readonly Case[], concurrency: number): Promise<RawAnswer[]> {
  const answers: RawAnswer[] = new Array(all.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < all.length; i = next++) {
      const c = all[i] as Case;
      answers[i] = await rawCall(c.request);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answers;
}

function targetsOf(grpcPort: number, connectPort: number): Target[] {
  const connect = `http://127.0.0.1:${connectPort}`;
  return [
    { name: "gRPC port", protocol: "grpc", baseUrl: `http://127.0.0.1:${grpcPort}` },
    { name: "Connect port, gRPC", protocol: "grpc", baseUrl: connect },
    { name: "Connect port, gRPC-Web", protocol: "grpc-web", baseUrl: connect },
    { name: "Connect port, Connect binary", protocol: "connect-proto", baseUrl: connect },
    { name: "Connect port, Connect JSON", protocol: "connect-json", baseUrl: connect },
  ];
}

describe(`fuzz (seed ${seed})`, () => {
  it("every RPC of both services, every port and protocol: no INTERNAL, no UNKNOWN; undecodable -> INVALID_ARGUMENT", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    const token = await signer.signToken({ sub: "fuzzer", roles: ["user", "admin"], ttl: "1h" });
    const authorization = `Bearer ${token}`;
    const all = [
      ...cases(
        [PromptService, AdminService],
        targetsOf(prompts.grpcPort, prompts.connectPort),
        authorization,
      ),
      ...cases(
        [EvaluationService, AdminService],
        targetsOf(evaluations.grpcPort, evaluations.connectPort),
        authorization,
      ),
    ];
    const answers = await runAll(all, 8);

    const failures: string[] = [];
    let undecodable = 0;
    for (const [i, c] of all.entries()) {
      const answer = answers[i] as RawAnswer;
      const where = `${c.target.name} ${c.request.path} ${JSON.stringify(answer)}`;
      if (answer.code === Code.Internal || answer.code === Code.Unknown) failures.push(where);
      if (!c.decodable) {
        undecodable++;
        if (answer.code !== Code.InvalidArgument) failures.push(`expected INVALID_ARGUMENT: ${where}`);
        // with the error details that say why (docs/errors.md): ErrorInfo, or BadRequest naming the field
        else if (
          detailOf(answer.details, "ErrorInfo") === undefined &&
          detailOf(answer.details, "BadRequest") === undefined
        )
          failures.push(`expected an ErrorInfo or BadRequest detail: ${where}`);
      }
    }
    expect(failures).toEqual([]);
    // The run is bounded and mostly exercises decoding.
    expect(all.length).toBeGreaterThan(1_000);
    expect(undecodable).toBeGreaterThan(all.length / 2);
  }, 120_000);
});
