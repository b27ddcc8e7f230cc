/**
 * Canonical JSON: the same value always serialises to the same string, so a hash of it can be recomputed
 * later (by the verifier, or by an auditor in another language). Rules, a subset of RFC 8785 (JCS):
 * object keys sorted by UTF-16 code units, no whitespace, strings and finite numbers as `JSON.stringify`
 * writes them, `undefined` object members omitted (as JSON does), `toJSON()` honoured (Dates -> ISO strings).
 * Non-finite numbers, bigints, functions and symbols are refused: they have no faithful JSON form, and a
 * silent `null` would make two different records hash alike.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, "$");
}

function serialise(value: unknown, path: string): string {
  if (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  ) {
    return serialise((value as { toJSON: () => unknown }).toJSON(), path);
  }
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path}`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        return `[${value.map((item, i) => (item === undefined ? "null" : serialise(item, `${path}[${i}]`))).join(",")}]`;
      }
      const entries = Object.keys(value)
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .sort()
        .map(
          (key) =>
            `${JSON.stringify(key)}:${serialise((value as Record<string, unknown>)[key], `${path}.${key}`)}`,
        );
      return `{${entries.join(",")}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialise a ${typeof value} at ${path}`);
  }
}
