import type { JsonObject } from "@bufbuild/protobuf";
import { z } from "zod";
import { charLength, datasetItemIdPattern, limits, utf8Bytes, uuidPattern } from "./domain/limits.js";

// Field rules shared by the request validators of EvaluationService (validators.ts) and DatasetService
// (dataset-validators.ts): one wording of each refusal.

export const uuid = z.string().regex(uuidPattern, "must be a UUID");

// libSQL binds TEXT as a C string: everything after a NUL would be silently dropped, so NUL is refused.
export const noNul = "must not contain NUL characters";

/** A string of `min`..`max` characters (code points), without NUL. */
export const chars = (min: number, max: number) =>
  z
    .string()
    .refine((s) => !s.includes("\0"), noNul)
    .refine(
      (s) => {
        const n = charLength(s);
        return n >= min && n <= max;
      },
      min === 0 ? `at most ${max} characters` : `must be ${min} to ${max} characters`,
    );

/** A string of at most `max` UTF-8 bytes, without NUL. */
export const maxBytes = (max: number) =>
  z
    .string()
    .refine((s) => !s.includes("\0"), noNul)
    .refine((s) => utf8Bytes(s) <= max, `at most ${max} bytes`);

/** A Struct (as a JSON object) of at most `max` bytes as stored. */
export const jsonObjectMaxBytes = (max: number) =>
  z
    .custom<JsonObject>((v) => typeof v === "object" && v !== null, "must be an object")
    // the stored text (structToJson) sorts the keys: same members, so the same length as JSON.stringify's
    .refine((v) => utf8Bytes(JSON.stringify(v)) <= max, `at most ${max} bytes as JSON`);

export const requestId = chars(0, limits.requestIdMaxChars);

/** A dataset item id (datasets and experiment results). */
export const datasetItemId = z
  .string()
  .max(limits.datasetItemIdMaxChars, `at most ${limits.datasetItemIdMaxChars} characters`)
  .regex(datasetItemIdPattern, "may hold only letters, digits and . _ : -");
