import { expect } from "vitest";
import { RenderError, type RenderErrorKind, type VariableDeclaration } from "../src/index.js";

export function fails(fn: () => unknown, kind: RenderErrorKind = "invalid_argument"): RenderError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RenderError);
    expect((e as RenderError).kind).toBe(kind);
    return e as RenderError;
  }
  throw new Error("expected a RenderError");
}

export async function failsAsync(
  p: Promise<unknown>,
  kind: RenderErrorKind = "invalid_argument",
): Promise<RenderError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RenderError);
    expect((e as RenderError).kind).toBe(kind);
    return e as RenderError;
  }
  throw new Error("expected a RenderError");
}

export function decl(
  name: string,
  type: VariableDeclaration["type"] = "string",
  more: Partial<VariableDeclaration> = {},
): VariableDeclaration {
  return { name, type, required: false, enumValues: [], description: "", ...more };
}
