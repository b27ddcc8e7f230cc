/**
 * Raw RPC requests with bodies of our choosing (bytes that need not decode), over each protocol the ports
 * speak, and the status each answer carries. For tests of what the server does with malformed input.
 */
import * as http2 from "node:http2";
import type { JsonValue } from "@bufbuild/protobuf";
import { connectJsonDetails, statusFromBytes } from "./error-details.js";

export type RawProtocol = "grpc" | "grpc-web" | "connect-proto" | "connect-json";

export interface RawAnswer {
  /** Numeric gRPC status (0 = OK). */
  readonly code: number;
  readonly message: string;
  /** Whether the error carried details (`grpc-status-details-bin` or Connect's `details`). */
  readonly hasDetails: boolean;
  /** The error details, decoded (see error-details.ts); empty when there were none. */
  readonly details: readonly JsonValue[];
}

export interface RawRequest {
  readonly baseUrl: string;
  /** `package.Service/Method`. */
  readonly path: string;
  readonly protocol: RawProtocol;
  /** The message bytes (for connect-json: the JSON text). */
  readonly body: Uint8Array | string;
  readonly streaming: boolean;
  readonly headers?: Record<string, string>;
  /** Override the envelope's flags byte (e.g. 1 = compressed). */
  readonly flags?: number;
  /** Send only this many bytes of the framed body (a truncated frame). */
  readonly truncateTo?: number;
}

const connectCodes = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

function bytesOf(body: Uint8Array | string): Uint8Array {
  return typeof body === "string" ? new TextEncoder().encode(body) : body;
}

export function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.byteLength);
  out.set(data, 5);
  return out;
}

function* envelopes(bytes: Uint8Array): Generator<{ flags: number; data: Uint8Array }> {
  let at = 0;
  while (at + 5 <= bytes.byteLength) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    yield { flags: bytes[at] ?? 0, data: bytes.subarray(at + 5, at + 5 + length) };
    at += 5 + length;
  }
}

function fromTrailerLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

function fromGrpcFields(fields: Record<string, string | string[] | undefined>): RawAnswer | undefined {
  const status = fields["grpc-status"];
  if (status === undefined) return undefined;
  const message = fields["grpc-message"];
  const bin = fields["grpc-status-details-bin"];
  return {
    code: Number(status),
    message: decodeURIComponent(String(message ?? "")),
    hasDetails: bin !== undefined,
    details: bin === undefined ? [] : statusFromBytes(Buffer.from(String(bin), "base64")).details,
  };
}

function fromConnectError(json: unknown): RawAnswer {
  const e = json as { code?: string; message?: string; details?: unknown[] };
  return {
    code: connectCodes.indexOf(e.code ?? "unknown"),
    message: e.message ?? "",
    hasDetails: (e.details?.length ?? 0) > 0,
    details: connectJsonDetails(e.details ?? []),
  };
}

function framed(req: RawRequest): Uint8Array {
  const bytes = bytesOf(req.body);
  const body =
    req.protocol === "grpc" || req.protocol === "grpc-web" || req.streaming
      ? envelope(req.flags ?? 0, bytes)
      : bytes;
  return req.truncateTo === undefined ? body : body.subarray(0, req.truncateTo);
}

/** gRPC over HTTP/2 (h2c): works against the gRPC port and the Connect port. */
function grpcCall(req: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(req.baseUrl);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": `/${req.path}`,
      "content-type": "application/grpc",
      te: "trailers",
      ...req.headers,
    });
    let headers: Record<string, string | string[] | undefined> = {};
    stream.on("response", (h) => {
      headers = h;
    });
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    let trailers: Record<string, string | string[] | undefined> = {};
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      const answer = fromGrpcFields(trailers) ?? fromGrpcFields(headers);
      if (answer === undefined) reject(new Error(`no grpc-status (HTTP ${String(headers[":status"])})`));
      else resolve(answer);
    });
    stream.end(framed(req));
  });
}

async function grpcWebCall(req: RawRequest): Promise<RawAnswer> {
  const res = await fetch(`${req.baseUrl}/${req.path}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", ...req.headers },
    body: framed(req),
  });
  const fromHeaders = fromGrpcFields(Object.fromEntries(res.headers));
  const body = new Uint8Array(await res.arrayBuffer());
  for (const frame of envelopes(body)) {
    if ((frame.flags & 0x80) === 0x80) {
      const answer = fromGrpcFields(fromTrailerLines(new TextDecoder().decode(frame.data)));
      if (answer !== undefined) return answer;
    }
  }
  if (fromHeaders !== undefined) return fromHeaders;
  throw new Error(`gRPC-Web answer without a status (HTTP ${res.status})`);
}

async function connectCall(req: RawRequest): Promise<RawAnswer> {
  const json = req.protocol === "connect-json";
  const contentType = req.streaming
    ? `application/connect+${json ? "json" : "proto"}`
    : `application/${json ? "json" : "proto"}`;
  const res = await fetch(`${req.baseUrl}/${req.path}`, {
    method: "POST",
    headers: { "content-type": contentType, "connect-protocol-version": "1", ...req.headers },
    body: framed(req),
  });
  const body = new Uint8Array(await res.arrayBuffer());
  if (!req.streaming) {
    if (res.status === 200) return { code: 0, message: "", hasDetails: false, details: [] };
    return fromConnectError(JSON.parse(new TextDecoder().decode(body)));
  }
  for (const frame of envelopes(body)) {
    if ((frame.flags & 0x02) === 0x02) {
      const end = JSON.parse(new TextDecoder().decode(frame.data)) as { error?: unknown };
      return end.error === undefined
        ? { code: 0, message: "", hasDetails: false, details: [] }
        : fromConnectError(end.error);
    }
  }
  throw new Error(`Connect stream without an end-stream frame (HTTP ${res.status})`);
}

/** Sends one raw request; server-streaming calls are read until the server ends them. */
export function rawCall(req: RawRequest): Promise<RawAnswer> {
  switch (req.protocol) {
    case "grpc":
      return grpcCall(req);
    case "grpc-web":
      return grpcWebCall(req);
    default:
      return connectCall(req);
  }
}
