import { createServer as createHttpServer } from "node:http";
import { Code } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it, onTestFinished } from "vitest";
import { createAuthenticator, createTokenSigner, RpcError } from "../src/index.js";
import { secret, signer } from "./helpers.js";

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof RpcError) return e.code;
    throw e;
  }
}

describe("createAuthenticator (HS256)", () => {
  const authenticate = createAuthenticator({ secret });

  it("returns the principal: sub, roles (default [user]) and the raw token", async () => {
    const token = await signer.signToken({ sub: "alice", roles: ["publisher", "admin"] });
    expect(await authenticate(`Bearer ${token}`)).toEqual({
      subject: "alice",
      roles: ["publisher", "admin"],
      projects: new Map(),
      serviceProject: undefined,
      token,
    });
    const noRoles = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("bob")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(secret));
    expect((await authenticate(`Bearer ${noRoles}`)).roles).toEqual(["user"]);
  });

  it("refuses unknown roles, a missing subject, another algorithm's key, and a short secret", async () => {
    const key = new TextEncoder().encode(secret);
    const badRoles = await new SignJWT({ roles: ["root"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("eve")
      .sign(key);
    expect(await codeOf(authenticate(`Bearer ${badRoles}`))).toBe(Code.Unauthenticated);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).sign(key);
    expect(await codeOf(authenticate(`Bearer ${noSub}`))).toBe(Code.Unauthenticated);
    const other = await createTokenSigner("another-secret-of-at-least-32-bytes!!").signToken({ sub: "x" });
    expect(await codeOf(authenticate(`Bearer ${other}`))).toBe(Code.Unauthenticated);
    expect(() => createAuthenticator({ secret: "too short" })).toThrow(/at least 32 bytes/);
  });

  it("checks issuer and audience when configured", async () => {
    const strict = createAuthenticator({ secret, issuer: "autoforge", audience: "prompt-service" });
    const good = await createTokenSigner(secret, {
      issuer: "autoforge",
      audience: "prompt-service",
    }).signToken({
      sub: "a",
    });
    expect(await codeOf(strict(`Bearer ${good}`))).toBe("ok");
    const wrongAudience = await createTokenSigner(secret, {
      issuer: "autoforge",
      audience: "other",
    }).signToken({
      sub: "a",
    });
    expect(await codeOf(strict(`Bearer ${wrongAudience}`))).toBe(Code.Unauthenticated);
  });
});

describe("createAuthenticator (JWKS URL)", () => {
  it("verifies RS256 tokens against a remote key set; an unreachable key set is UNAVAILABLE", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    let up = true;
    const jwks = createHttpServer((_req, res) => {
      res.writeHead(up ? 200 : 503, { "content-type": "application/json" });
      res.end(up ? JSON.stringify({ keys: [jwk] }) : "{}");
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
    const address = jwks.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;

    const token = await new SignJWT({ roles: ["service"] })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject("evaluation-service")
      .setExpirationTime("5m")
      .sign(privateKey);
    const authenticate = createAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    expect(await authenticate(`Bearer ${token}`)).toMatchObject({
      subject: "evaluation-service",
      roles: ["service"],
    });

    up = false;
    const fresh = createAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    expect(await codeOf(fresh(`Bearer ${token}`))).toBe(Code.Unavailable);
  });
});
