import type { JsonObject } from "@bufbuild/protobuf";
import { stableStringify } from "./request-digest.js";

/** google.protobuf.Struct <-> TEXT JSON column. An unset Struct is stored as `{}`. */
export function structToJson(value: JsonObject | undefined): string {
  // keys sorted: equal objects store (and compare) equal whatever their field order
  return stableStringify(value ?? {});
}

export function jsonToStruct(text: string): JsonObject {
  return JSON.parse(text) as JsonObject;
}
