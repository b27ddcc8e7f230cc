#!/usr/bin/env node
// Mints an HS256 bearer token signed with AUTH_JWT_SECRET (and AUTH_ISSUER / AUTH_AUDIENCE when set), the way
// the services verify it. Needs the built @autoforge/server (`npm run build`, or run it inside a service image).
//   AUTH_JWT_SECRET=... node scripts/mint-token.mjs --sub evaluation-service --roles service --ttl 30d
// Prints only the token, so `export SERVICE_TOKEN=$(node scripts/mint-token.mjs ...)` works.
import { parseArgs } from "node:util";
import { createTokenSigner } from "@autoforge/server";

const { values } = parseArgs({
  options: {
    sub: { type: "string", default: "dev-user" },
    roles: { type: "string", default: "user" },
    ttl: { type: "string", default: "12h" },
  },
});
const secret = process.env.AUTH_JWT_SECRET;
if (secret === undefined || Buffer.byteLength(secret, "utf8") < 32) {
  console.error("mint-token: set AUTH_JWT_SECRET (at least 32 bytes) to the secret the services use");
  process.exit(1);
}
const roles = values.roles
  .split(",")
  .map((role) => role.trim())
  .filter((role) => role !== "");
const signer = createTokenSigner(secret, {
  ...(process.env.AUTH_ISSUER ? { issuer: process.env.AUTH_ISSUER } : {}),
  ...(process.env.AUTH_AUDIENCE ? { audience: process.env.AUTH_AUDIENCE } : {}),
});
console.log(await signer.signToken({ sub: values.sub, roles, ttl: values.ttl }));
