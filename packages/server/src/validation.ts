import type { DescField, DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import { z } from "zod";
import { type FieldViolation, InvalidArgumentError } from "./errors.js";

/**
 * Constraints of one request message: a zod schema per field, keyed by the field's TypeScript name
 * (protobuf-es `localName`, camelCase). Errors name the proto field (snake_case) instead.
 */
export type FieldRules<D extends DescMessage> = {
  [K in Exclude<keyof MessageShape<D>, "$typeName" | "$unknown">]?: z.ZodType;
};

export interface MessageValidator {
  /** Fully qualified message name, e.g. `autoforge.admin.v1.ListAuditEventsRequest`. */
  readonly typeName: string;
  /** Throws one InvalidArgumentError naming every bad field of the message and the rule it breaks. */
  validate(message: Message): void;
}

/** Validators by request message type name: one declaration per message type. */
export type Validators = ReadonlyMap<string, MessageValidator>;

export function createValidators(...validators: MessageValidator[]): Validators {
  const map = new Map<string, MessageValidator>();
  for (const v of validators) {
    if (map.has(v.typeName)) throw new Error(`two validators for ${v.typeName}`);
    map.set(v.typeName, v);
  }
  return map;
}

function elementMessage(f: DescField | undefined): DescMessage | undefined {
  if (f?.fieldKind === "list" && f.listKind === "message") return f.message;
  if (f?.fieldKind === "map" && f.mapKind === "message") return f.message;
  return undefined;
}

/** Turns a zod issue path (localNames, indexes, map keys) into a proto field path (`tags[2]`, `config.name`). */
export function protoFieldPath(desc: DescMessage, path: readonly PropertyKey[]): string {
  let message: DescMessage | undefined = desc;
  let field: DescField | undefined;
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number" || (field !== undefined && field.fieldKind === "map")) {
      out += `[${String(segment)}]`;
      message = elementMessage(field);
      field = undefined;
      continue;
    }
    const name = String(segment);
    field = message?.fields.find((f) => f.localName === name);
    out += (out === "" ? "" : ".") + (field?.name ?? name);
    message = field?.fieldKind === "message" ? field.message : undefined;
  }
  return out;
}

/** Collects a request's violations: `check` functions report each one instead of throwing at the first. */
export interface Violations {
  add(field: string, description: string, reason?: string): void;
}

/**
 * Declares the constraints of a request message with zod. `check` adds cross-field rules: it reports
 * violations through `violations` (it may still throw InvalidArgumentError; its violations are kept too).
 * Both run on every request, so the answer lists all of its bad fields, not only the first.
 *
 * ```ts
 * defineValidator(ListAuditEventsRequestSchema, { pageSize: z.int().min(0).max(100) })
 * ```
 */
export function defineValidator<D extends DescMessage>(
  schema: D,
  rules: FieldRules<D>,
  check?: (message: MessageShape<D>, violations: Violations) => void,
): MessageValidator {
  const zodSchema = z.object(rules as Record<string, z.ZodType>);
  return {
    typeName: schema.typeName,
    validate(message) {
      const found: FieldViolation[] = [];
      const seen = new Set<string>();
      const add = (field: string, description: string, reason?: string) => {
        // zod may report one rule twice for a field (e.g. a union's branches); say it once
        const key = `${field}\0${description}`;
        if (seen.has(key)) return;
        seen.add(key);
        found.push(reason === undefined ? { field, description } : { field, description, reason });
      };
      const result = zodSchema.safeParse(message);
      if (!result.success) {
        for (const issue of result.error.issues) add(protoFieldPath(schema, issue.path), issue.message);
      }
      try {
        check?.(message as MessageShape<D>, { add });
      } catch (e) {
        if (!(e instanceof InvalidArgumentError)) throw e;
        for (const v of e.violations) add(v.field, v.description, v.reason);
      }
      const [first, ...rest] = found;
      if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
    },
  };
}
