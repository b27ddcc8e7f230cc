import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type AuditCheckpointExpectations, type AuditReader, auditChainHead } from "./audit.js";
import { canonicalJson } from "./canonical-json.js";

/**
 * A signed statement "the chain `chain` had row `seq` with hash `hash` at `time`", written outside the
 * database. One JSON object per line of `<dir>/<chain>.audit-checkpoints.jsonl`; `sig` is the base64url
 * Ed25519 signature of canonical JSON of every other member; `keyId` names the signing key (the first 16 hex
 * digits of the sha256 of its public key, SPKI DER).
 */
export interface AuditCheckpoint {
  readonly v: 1;
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly time: number;
  readonly keyId: string;
  readonly sig: string;
}

export interface AuditCheckpointSigner {
  readonly keyId: string;
  sign(checkpoint: Omit<AuditCheckpoint, "sig" | "keyId" | "v">): AuditCheckpoint;
  /** True when the signature verifies under this signer's public key. */
  verify(checkpoint: AuditCheckpoint): boolean;
}

function signedBytes(c: Omit<AuditCheckpoint, "sig">): Buffer {
  return Buffer.from(
    canonicalJson({ v: c.v, chain: c.chain, seq: c.seq, hash: c.hash, time: c.time, keyId: c.keyId }),
  );
}

/** From an Ed25519 private key in PEM (PKCS#8, `openssl genpkey -algorithm ed25519`); throws a RangeError otherwise. */
export function createAuditCheckpointSigner(privateKeyPem: string): AuditCheckpointSigner {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch {
    throw new RangeError("is not a PEM private key");
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new RangeError(`must be an Ed25519 key, got ${privateKey.asymmetricKeyType ?? "a symmetric key"}`);
  }
  const publicKey = createPublicKey(privateKey);
  const keyId = createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
  return {
    keyId,
    sign(c) {
      const unsigned = { v: 1 as const, chain: c.chain, seq: c.seq, hash: c.hash, time: c.time, keyId };
      return { ...unsigned, sig: sign(null, signedBytes(unsigned), privateKey).toString("base64url") };
    },
    verify(c) {
      try {
        return verify(null, signedBytes(c), publicKey, Buffer.from(c.sig, "base64url"));
      } catch {
        return false;
      }
    },
  };
}

export function auditCheckpointFile(dir: string, chain: string): string {
  return join(dir, `${chain}.audit-checkpoints.jsonl`);
}

function parseLine(line: string): AuditCheckpoint | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return "is not JSON";
  }
  const c = value as Partial<AuditCheckpoint> | null;
  if (
    c === null ||
    typeof c !== "object" ||
    c.v !== 1 ||
    typeof c.chain !== "string" ||
    !Number.isSafeInteger(c.seq) ||
    typeof c.hash !== "string" ||
    !Number.isSafeInteger(c.time) ||
    typeof c.keyId !== "string" ||
    typeof c.sig !== "string"
  ) {
    return "is not a checkpoint";
  }
  return c as AuditCheckpoint;
}

/**
 * Reads and checks every checkpoint of `chain` under `dir`: lines that are malformed, of another chain, signed
 * by another key, or whose signature fails are returned as `invalid` (with their line number). An absent file
 * gives no checkpoints.
 */
export async function readAuditCheckpoints(
  dir: string,
  chain: string,
  signer: AuditCheckpointSigner,
): Promise<{ checkpoints: AuditCheckpoint[]; invalid: { seq: number; detail: string }[]; exists: boolean }> {
  let text: string;
  try {
    text = await readFile(auditCheckpointFile(dir, chain), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      return { checkpoints: [], invalid: [], exists: false };
    throw e;
  }
  const checkpoints: AuditCheckpoint[] = [];
  const invalid: { seq: number; detail: string }[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const c = parseLine(line);
    const where = `checkpoint line ${i + 1}`;
    if (typeof c === "string") invalid.push({ seq: 0, detail: `${where} ${c}` });
    else if (c.chain !== chain) invalid.push({ seq: c.seq, detail: `${where} is of chain ${c.chain}` });
    else if (c.keyId !== signer.keyId) {
      invalid.push({ seq: c.seq, detail: `${where} is signed by unknown key ${c.keyId}` });
    } else if (!signer.verify(c)) invalid.push({ seq: c.seq, detail: `${where} has a bad signature` });
    else checkpoints.push(c);
  });
  return { checkpoints, invalid, exists: true };
}

export interface CheckpointLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditCheckpointerOptions {
  readonly db: AuditReader;
  /** Directory of the append-only checkpoint files (created if absent). */
  readonly dir: string;
  /** Names the chain (the service), in the file name and the signed statement. */
  readonly chain: string;
  readonly signer: AuditCheckpointSigner;
  /** Checkpoint once the head moved this many rows past the last checkpoint; 0 = not by rows. */
  readonly everyRows: number;
  /** Checkpoint a moved head at least this often (ms); 0 = not by time. */
  readonly intervalMs: number;
  /** How often the head is looked at (ms); default 1 s, never more than intervalMs. */
  readonly pollMs?: number;
  readonly logger?: CheckpointLogger;
  readonly now?: () => number;
}

export interface AuditCheckpointer {
  /** Reads the last checkpoint, writes one if the head moved since, then polls. */
  start(): Promise<void>;
  /** Stops polling and writes a final checkpoint if the head moved. */
  stop(): Promise<void>;
  /** Writes a checkpoint now if the head moved since the last one; returns it. */
  checkpoint(): Promise<AuditCheckpoint | undefined>;
  /** What VerifyAuditChain compares the chain against: the file's checkpoints, checked. */
  expectations(): Promise<AuditCheckpointExpectations>;
}

/**
 * Signs the chain head every `everyRows` rows or `intervalMs` and appends it as one line (O_APPEND, fsync) to
 * the chain's checkpoint file, and to the log. Writes are serialised.
 */
export function createAuditCheckpointer(options: AuditCheckpointerOptions): AuditCheckpointer {
  const { db, dir, chain, signer, everyRows, intervalMs, logger } = options;
  const now = options.now ?? Date.now;
  const pollMs = Math.max(
    10,
    Math.min(options.pollMs ?? 1_000, intervalMs > 0 ? intervalMs : Number.MAX_SAFE_INTEGER),
  );
  let last: { seq: number; time: number } = { seq: 0, time: now() };
  /** Checkpoints known to exist (read at start or written since): their absence later is reported. */
  let known = 0;
  let timer: NodeJS.Timeout | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  async function write(force: boolean): Promise<AuditCheckpoint | undefined> {
    const head = await auditChainHead(db);
    if (head.seq <= last.seq) return undefined;
    const due =
      force ||
      (everyRows > 0 && head.seq - last.seq >= everyRows) ||
      (intervalMs > 0 && now() - last.time >= intervalMs);
    if (!due) return undefined;
    const checkpoint = signer.sign({ chain, seq: head.seq, hash: head.hash, time: now() });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = await open(auditCheckpointFile(dir, chain), "a", 0o600);
    try {
      await file.write(`${JSON.stringify(checkpoint)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    last = { seq: checkpoint.seq, time: checkpoint.time };
    known++;
    logger?.info({ auditCheckpoint: checkpoint }, "audit checkpoint");
    return checkpoint;
  }

  const tick = () => {
    serial(() => write(false)).catch((e: unknown) => logger?.error({ err: e }, "audit checkpoint failed"));
  };

  return {
    async start() {
      const read = await readAuditCheckpoints(dir, chain, signer);
      const newest = read.checkpoints.at(-1);
      if (newest !== undefined) last = { seq: newest.seq, time: newest.time };
      known = read.checkpoints.length;
      const head = await auditChainHead(db);
      if (!read.exists && head.seq > 0) {
        logger?.warn(
          { file: auditCheckpointFile(dir, chain), seq: head.seq },
          "no audit checkpoints yet for a non-empty chain",
        );
      }
      await serial(() => write(true));
      timer = setInterval(tick, pollMs);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await serial(() => write(true));
    },
    checkpoint: () => serial(() => write(true)),
    async expectations() {
      const read = await readAuditCheckpoints(dir, chain, signer);
      return {
        checkpoints: read.checkpoints,
        invalid: read.invalid,
        missing:
          known > 0 && read.checkpoints.length === 0
            ? `${known} checkpoint(s) were written to ${auditCheckpointFile(dir, chain)}, none is there`
            : undefined,
      };
    },
  };
}
