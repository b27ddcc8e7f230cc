import { createTokenSigner } from "@autoforge/server";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createAutoforgeClient, createTokenProvider, jwtTimes } from "../src/index.js";
import { fakeTransport } from "./fake-transport.js";

const t0 = Date.UTC(2026, 0, 1);

/** An unsigned JWT with these claims (the client never verifies; the server does). */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

/** A provider minting a token of `lifeS` seconds at the fake clock's time, counting its calls. */
function minting(clock: { now: number }, lifeS: number) {
  let calls = 0;
  const provider = () => {
    calls++;
    const iat = Math.floor(clock.now / 1000);
    return jwt({ sub: "svc", n: calls, iat, exp: iat + lifeS });
  };
  return { provider, calls: () => calls };
}

const serial = (token: string) =>
  (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { n: number }).n;

describe("jwtTimes (exp and iat, read without verifying)", () => {
  it("reads a token of the server kit's signer", async () => {
    const signer = createTokenSigner("a-test-secret-of-at-least-32-bytes-long!!");
    const before = Math.floor(Date.now() / 1000) * 1000;
    const times = jwtTimes(await signer.signToken({ sub: "svc", roles: ["service"], ttl: "5m" }));
    expect(times?.issuedAt).toBeGreaterThanOrEqual(before);
    expect((times?.expiresAt ?? 0) - (times?.issuedAt ?? 0)).toBe(300_000);
  });

  it("is undefined for an opaque token or one without exp", () => {
    expect(jwtTimes("not-a-jwt")).toBeUndefined();
    expect(jwtTimes("a.b.c")).toBeUndefined();
    expect(jwtTimes(jwt({ sub: "x" }))).toBeUndefined();
    expect(jwtTimes(jwt({ exp: 100 }))).toEqual({ expiresAt: 100_000 });
  });
});

describe("createTokenProvider", () => {
  it("a static token is sent as it is", async () => {
    const tokens = createTokenProvider("static-token");
    expect(await tokens.token()).toBe("static-token");
  });

  it("calls the function lazily, once, and serves the cached token until the refresh point", async () => {
    const clock = { now: t0 };
    const m = minting(clock, 3600);
    const tokens = createTokenProvider(m.provider, { now: () => clock.now });
    expect(m.calls()).toBe(0);
    const first = await tokens.token();
    expect(await tokens.token()).toBe(first);
    clock.now = t0 + 53 * 60_000; // 7 min left: more than 10 % (6 min) of the hour
    expect(await tokens.token()).toBe(first);
    expect(m.calls()).toBe(1);
    clock.now = t0 + 54 * 60_000 + 1; // less than 6 min left: refreshed before expiry
    const second = await tokens.token();
    expect(serial(second)).toBe(2);
    expect(await tokens.token()).toBe(second);
    expect(m.calls()).toBe(2);
  });

  it("refreshes a short-lived token when less than 30 s remain", async () => {
    const clock = { now: t0 };
    const m = minting(clock, 120);
    const tokens = createTokenProvider(m.provider, { now: () => clock.now });
    await tokens.token();
    clock.now = t0 + 89_000; // 31 s left
    expect(serial(await tokens.token())).toBe(1);
    clock.now = t0 + 91_000; // 29 s left
    expect(serial(await tokens.token())).toBe(2);
  });

  it("reuses a token shorter than a minute for half its life", async () => {
    const clock = { now: t0 };
    const m = minting(clock, 20);
    const tokens = createTokenProvider(m.provider, { now: () => clock.now });
    await tokens.token();
    clock.now = t0 + 9_000;
    expect(serial(await tokens.token())).toBe(1);
    clock.now = t0 + 10_000;
    expect(serial(await tokens.token())).toBe(2);
  });

  it("concurrent calls share one refresh", async () => {
    let calls = 0;
    let release: (token: string) => void = () => {};
    const tokens = createTokenProvider(() => {
      calls++;
      return new Promise<string>((resolve) => {
        release = resolve;
      });
    });
    const waiting = Promise.all(Array.from({ length: 5 }, () => tokens.token()));
    release(jwt({ exp: Math.floor(Date.now() / 1000) + 3600 }));
    expect(new Set(await waiting).size).toBe(1);
    expect(calls).toBe(1);
  });

  it("a failing provider surfaces as UNAUTHENTICATED with the cause", async () => {
    const cause = new Error("vault sealed");
    const tokens = createTokenProvider(() => Promise.reject(cause));
    const err = await tokens.token().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    expect((err as ConnectError).rawMessage).toBe("token provider failed: vault sealed");
    expect((err as ConnectError).cause).toBe(cause);

    const empty = createTokenProvider(() => "");
    await expect(empty.token()).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("a refresh that fails before expiry keeps the token in hand; after expiry it fails", async () => {
    const clock = { now: t0 };
    let fail = false;
    const m = minting(clock, 600);
    const tokens = createTokenProvider(
      () => {
        if (fail) throw new Error("idp down");
        return m.provider();
      },
      { now: () => clock.now },
    );
    const first = await tokens.token();
    fail = true;
    clock.now = t0 + 590_000; // in the refresh window, still valid
    expect(await tokens.token()).toBe(first);
    clock.now = t0 + 600_000; // expired
    await expect(tokens.token()).rejects.toMatchObject({ code: Code.Unauthenticated });
    fail = false;
    expect(serial(await tokens.token())).toBe(2);
  });

  it("an opaque token is kept until invalidated", async () => {
    let calls = 0;
    const tokens = createTokenProvider(() => `opaque-${++calls}`);
    expect(await tokens.token()).toBe("opaque-1");
    expect(await tokens.token()).toBe("opaque-1");
    tokens.invalidate("someone-else");
    expect(await tokens.token()).toBe("opaque-1");
    tokens.invalidate("opaque-1");
    expect(await tokens.token()).toBe("opaque-2");
  });
});

describe("the token on the wire", () => {
  it("every call sends authorization: Bearer, with the refreshed token once the old one nears expiry", async () => {
    const clock = { now: t0 };
    const m = minting(clock, 300);
    const transport = fakeTransport();
    const client = createAutoforgeClient({
      transport,
      token: m.provider,
      tokenOptions: { now: () => clock.now },
    });
    await client.promptService.getPrompt({ name: "a" });
    await client.promptService.getPrompt({ name: "a" });
    clock.now = t0 + 271_000; // 29 s left
    await client.promptService.getPrompt({ name: "a" });
    const sent = transport.attempts.map((a) =>
      serial(a.header.get("authorization")?.replace(/^Bearer /, "") ?? ""),
    );
    expect(sent).toEqual([1, 1, 2]);
  });

  it("a call's own authorization header wins; an empty static token sends none", async () => {
    const transport = fakeTransport();
    const client = createAutoforgeClient({ transport, token: "mine" });
    await client.promptService.getPrompt({ name: "a" }, { headers: { authorization: "Bearer forwarded" } });
    const anonymous = createAutoforgeClient({ transport, token: "" });
    await anonymous.promptService.getPrompt({ name: "a" });
    expect(transport.attempts.map((a) => a.header.get("authorization"))).toEqual(["Bearer forwarded", null]);
  });

  it("a failing provider fails the call with UNAUTHENTICATED before anything is sent", async () => {
    const transport = fakeTransport();
    const client = createAutoforgeClient({
      transport,
      token: () => {
        throw new Error("no credentials file");
      },
    });
    await expect(client.promptService.getPrompt({ name: "a" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: "token provider failed: no credentials file",
    });
    expect(transport.attempts).toHaveLength(0);
  });

  it("a token the server refused (UNAUTHENTICATED) is not sent again", async () => {
    let n = 0;
    const transport = fakeTransport((attempt) => {
      if (attempt.header.get("authorization") === "Bearer revoked") {
        throw new ConnectError("token revoked", Code.Unauthenticated);
      }
      return {};
    });
    const client = createAutoforgeClient({ transport, token: () => (++n === 1 ? "revoked" : "fresh") });
    await expect(client.promptService.getPrompt({ name: "a" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await client.promptService.getPrompt({ name: "a" });
    expect(transport.attempts.map((a) => a.header.get("authorization"))).toEqual([
      "Bearer revoked",
      "Bearer fresh",
    ]);
  });
});
