import { readFileSync } from "node:fs";
import {
  type AuditCheckpointer,
  type AuditEntryInput,
  type AuditEvent,
  type AuditKeyring,
  appendAudit,
  createAuditCheckpointer,
  createAuditCheckpointSigner,
  createAuditKeyring,
  type Database,
  parseAuditKeyList,
  type SqlExecutor,
} from "@autoforge/db";
import { type AuditConfig, ConfigError } from "@autoforge/server";

export interface AuditTrailLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * A service's audit chain as configured (docs/audit.md): every writer of audit rows appends through `append`,
 * so no row joins the chain unkeyed once keys are set; `checkpointer` signs the head outside the database.
 */
export interface AuditTrail {
  readonly keys: AuditKeyring | undefined;
  readonly checkpointer: AuditCheckpointer | undefined;
  append(tx: SqlExecutor, entry: AuditEntryInput): Promise<AuditEvent>;
  /** Writes a checkpoint if the head moved since the last one, then keeps checkpointing. */
  start(): Promise<void>;
  /** Writes a final checkpoint. Call before the database closes. */
  stop(): Promise<void>;
}

function configured<T>(variable: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    throw new ConfigError(variable, e instanceof Error ? e.message : String(e));
  }
}

/**
 * Decodes the keys of `config` (failing with a ConfigError naming the variable, never echoing key material) and
 * builds the service's audit trail; `chain` names it in the checkpoint file (the service name).
 */
export function createAuditTrail<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
  config: AuditConfig,
  options: { readonly chain: string; readonly logger?: AuditTrailLogger },
): AuditTrail {
  const { hmac, checkpoints } = config;
  const keys =
    hmac === undefined
      ? undefined
      : configured("AUDIT_HMAC_KEYS", () =>
          createAuditKeyring(parseAuditKeyList(hmac.keyList), hmac.currentKeyId),
        );
  const checkpointer =
    checkpoints === undefined
      ? undefined
      : createAuditCheckpointer({
          db,
          dir: checkpoints.dir,
          chain: options.chain,
          signer: configured(
            "pem" in checkpoints.privateKey ? "AUDIT_CHECKPOINT_KEY" : "AUDIT_CHECKPOINT_KEY_FILE",
            () =>
              createAuditCheckpointSigner(
                "pem" in checkpoints.privateKey
                  ? checkpoints.privateKey.pem
                  : readFileSync(checkpoints.privateKey.file, "utf8"),
              ),
          ),
          everyRows: checkpoints.everyRows,
          intervalMs: checkpoints.intervalMs,
          ...(options.logger === undefined ? {} : { logger: options.logger }),
        });
  return {
    keys,
    checkpointer,
    append: (tx, entry) => appendAudit(tx, entry, keys),
    start: async () => checkpointer?.start(),
    stop: async () => checkpointer?.stop(),
  };
}

/** No keys, no checkpoints: the unkeyed SHA-256 chain (the default without `AUDIT_*` variables). */
export const unkeyedAuditTrail: AuditTrail = Object.freeze({
  keys: undefined,
  checkpointer: undefined,
  append: (tx: SqlExecutor, entry: AuditEntryInput) => appendAudit(tx, entry),
  start: async () => {},
  stop: async () => {},
});
