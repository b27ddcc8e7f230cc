import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

const secret = "s".repeat(32);

// The variables themselves are parsed by the server kit: packages/server/test/config.test.ts.
describe("config", () => {
  it("has the documented defaults", () => {
    const c = loadConfig({ AUTH_JWT_SECRET: secret });
    expect(c).toMatchObject({
      host: "127.0.0.1",
      grpcPort: 50051,
      connectPort: 8081,
      database: {
        url: `file:${fileURLToPath(new URL("../../../data/prompt-service.db", import.meta.url))}`,
        authToken: undefined,
        syncUrl: undefined,
      },
      auth: { kind: "secret", secret, generated: false },
      logLevel: "info",
      promotionGateSubjects: ["evaluation-service"],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("PROMOTION_GATE_SUBJECTS: comma-separated token subjects", () => {
    const gate = (value: string) =>
      loadConfig({ AUTH_JWT_SECRET: secret, PROMOTION_GATE_SUBJECTS: value }).promotionGateSubjects;
    expect(gate("release-gate")).toEqual(["release-gate"]);
    expect(gate(" evaluation-service , release-gate ")).toEqual(["evaluation-service", "release-gate"]);
    expect(() => gate("a,,b")).toThrow(/^PROMOTION_GATE_SUBJECTS: /);
  });
});
