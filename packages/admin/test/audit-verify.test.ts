import { generateKeyPairSync, randomBytes } from "node:crypto";
import { VerifyAuditChainRequestSchema } from "@autoforge/contracts/admin/v1";
import {
  appendAudit,
  createAuditCheckpointer,
  createAuditCheckpointSigner,
  createAuditKeyring,
} from "@autoforge/db";
import type { CallContext } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { createAdminHandlers, createMaintenance } from "../src/index.js";
import { tempDir, testDatabase } from "./helpers.js";

const ctx = { deadline: Date.now() + 60_000, signal: new AbortController().signal } as CallContext<never>;
const req = create(VerifyAuditChainRequestSchema);

describe("VerifyAuditChain with HMAC keys and signed checkpoints", () => {
  it("verifies a keyed chain against its checkpoints, and reports a truncated one and a missing key", async () => {
    const db = await testDatabase();
    const keys = createAuditKeyring([["k1", randomBytes(32)]], "k1");
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const checkpoints = createAuditCheckpointer({
      db,
      dir: tempDir(),
      chain: "notes",
      signer: createAuditCheckpointSigner(pem),
      everyRows: 1,
      intervalMs: 0,
    });
    for (let i = 1; i <= 3; i++) {
      await db.write((tx) =>
        appendAudit(
          tx,
          { actor: "a", action: "note.create", resourceType: "note", resourceId: `${i}` },
          keys,
        ),
      );
    }
    await checkpoints.checkpoint();
    const handlers = createAdminHandlers({
      db,
      maintenance: createMaintenance(db),
      audit: { keys, checkpoints },
    });
    expect(await handlers.verifyAuditChain(req, ctx)).toMatchObject({ ok: true, checkedCount: 3n });

    const unkeyed = createAdminHandlers({ db, maintenance: createMaintenance(db) });
    expect(await unkeyed.verifyAuditChain(req, ctx)).toMatchObject({
      ok: false,
      firstBrokenSequence: 1n,
      reason: expect.stringMatching(/^unknown_key: /),
    });

    await db.write(async (tx) => {
      await tx.run("DROP TRIGGER IF EXISTS audit_log_no_delete");
      await tx.run("DELETE FROM audit_log WHERE seq = 3");
      await tx.run("UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit_log'");
    });
    expect(await handlers.verifyAuditChain(req, ctx)).toMatchObject({
      ok: false,
      firstBrokenSequence: 3n,
      reason: expect.stringMatching(/^checkpoint_beyond_head: /),
    });
  });
});
