import { type DescField, type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { UndecodableRequestError } from "./decode.js";
import { type FieldViolation, mapError, toConnectError } from "./errors.js";

/**
 * The Connect port's JSON request decoding, per method: strict (an unknown field or enum name is refused),
 * UTF-8 checked, with the failing field named by its proto path (`version.model_config`), and field masks
 * accepted in the proto's snake_case (`"updateMask": "model_config,tags"`) as well as the lowerCamelCase of
 * the protobuf JSON mapping. connect-node calls `decode` on the request body and then parses the text it
 * returns; an error thrown here is its INVALID_ARGUMENT answer.
 */
export function strictJsonDecoder(schema: DescMessage): { decode(bytes: Uint8Array): string } {
  return {
    decode(bytes) {
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch {
        throw undecodable("the body is not valid UTF-8");
      }
      let json: JsonValue;
      try {
        json = JSON.parse(text) as JsonValue;
      } catch (e) {
        throw undecodable(e instanceof Error ? e.message : String(e));
      }
      const changed = camelCaseFieldMasks(schema, json);
      try {
        fromJson(schema, json, strict);
      } catch (e) {
        const violations = explain(schema, json, "");
        if (violations.length === 0) throw undecodable(e instanceof Error ? e.message : String(e));
        throw undecodable(violations.map((v) => `${v.field}: ${v.description}`).join("; "), violations);
      }
      return changed ? JSON.stringify(json) : text;
    },
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const strict = { ignoreUnknownFields: false } as const;

/** connect-node answers a ConnectError thrown here as it is: the same status and details as the gRPC port's. */
function undecodable(reason: string, violations: readonly FieldViolation[] = []): Error {
  return toConnectError(mapError(new UndecodableRequestError(reason, violations)));
}

function isObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fieldFor(schema: DescMessage, key: string): DescField | undefined {
  return schema.fields.find((f) => f.jsonName === key || f.name === key);
}

/** Message-typed fields we descend into (not well-known types, which have their own JSON forms). */
function nested(field: DescField): DescMessage | undefined {
  if (field.fieldKind !== "message" && field.fieldKind !== "list") return undefined;
  const message = field.message;
  return message !== undefined && !message.typeName.startsWith("google.protobuf.") ? message : undefined;
}

/** Rewrites snake_case field mask paths to lowerCamelCase, in place; true when something changed. */
function camelCaseFieldMasks(schema: DescMessage, json: JsonValue): boolean {
  if (!isObject(json)) return false;
  let changed = false;
  for (const [key, value] of Object.entries(json)) {
    const field = fieldFor(schema, key);
    if (field === undefined) continue;
    if (
      field.fieldKind === "message" &&
      field.message.typeName === "google.protobuf.FieldMask" &&
      typeof value === "string" &&
      value.includes("_")
    ) {
      json[key] = value.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      changed = true;
      continue;
    }
    const inner = nested(field);
    if (inner === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      if (camelCaseFieldMasks(inner, item)) changed = true;
    }
  }
  return changed;
}

/** Every field that does not decode, by proto path (`version.model_config`); empty when none can be singled out. */
function explain(schema: DescMessage, json: JsonValue, prefix: string): FieldViolation[] {
  if (!isObject(json)) return [];
  const out: FieldViolation[] = [];
  for (const [key, value] of Object.entries(json)) {
    const field = fieldFor(schema, key);
    if (field === undefined) {
      out.push({ field: `${prefix}${key}`, description: "unknown field" });
      continue;
    }
    try {
      fromJson(schema, { [key]: value }, strict);
    } catch (e) {
      const inner = nested(field);
      const items = Array.isArray(value) ? value : [value];
      const found: FieldViolation[] = [];
      if (inner !== undefined) {
        for (const [i, item] of items.entries()) {
          const at = Array.isArray(value) ? `${prefix}${field.name}[${i}].` : `${prefix}${field.name}.`;
          found.push(...explain(inner, item, at));
        }
      }
      if (found.length > 0) out.push(...found);
      else
        out.push({
          field: `${prefix}${field.name}`,
          description: e instanceof Error ? e.message : String(e),
        });
    }
  }
  return out;
}
