export {
  AUDIT_GENESIS_HASH,
  type AuditChainBreak,
  type AuditChainVerification,
  type AuditCheckpointExpectations,
  type AuditEntryInput,
  type AuditEvent,
  type AuditLogRow,
  type AuditReader,
  appendAudit,
  auditChainHead,
  auditDigest,
  auditLog,
  auditLogTriggersDownSql,
  auditLogTriggersSql,
  auditRowHash,
  auditRowHmac,
  type ListAuditEventsOptions,
  listAuditEvents,
  type SqlExecutor,
  type VerifyAuditChainOptions,
  verifyAuditChain,
} from "./audit.js";
export {
  type AuditCheckpoint,
  type AuditCheckpointer,
  type AuditCheckpointerOptions,
  type AuditCheckpointSigner,
  auditCheckpointFile,
  createAuditCheckpointer,
  createAuditCheckpointSigner,
  readAuditCheckpoints,
} from "./audit-checkpoints.js";
export {
  AUDIT_KEY_MIN_BYTES,
  type AuditKeyring,
  createAuditKeyring,
  parseAuditKeyList,
} from "./audit-keys.js";
export { canonicalJson } from "./canonical-json.js";
export {
  createDatabase,
  type Database,
  type DatabaseLogger,
  type DatabaseMode,
  type DatabaseOptions,
  type DatabaseRetryEvent,
  type Tx,
  type UnitOfWork,
  type UnitOfWorkContext,
  type UnitOfWorkEvent,
  type UnitOfWorkKind,
  type UnitOfWorkOptions,
  type WriteOptions,
} from "./database.js";
export {
  CommitOutcomeUnknownError,
  type ConstraintKind,
  ConstraintViolationError,
  classifyCommitError,
  classifyDatabaseError,
  DatabaseAuthError,
  DatabaseClosedError,
  DatabaseError,
  DeadlineExceededError,
  isTransientDatabaseError,
  ResultTooLargeError,
  TransientDatabaseError,
  type TransientReason,
} from "./errors.js";
export { type IdempotencyKeyRow, idempotencyKeyStore, idempotencyKeys } from "./idempotency-keys.js";
export { insertRows } from "./insert-rows.js";
export {
  MIGRATE_EXIT,
  MIGRATE_USAGE,
  type MigrateCliOptions,
  type MigrationCommandOptions,
  runMigrateCli,
  runMigrationCommand,
} from "./migrate-command.js";
export {
  type CheckableDatabase,
  type CheckMigrationsOptions,
  checkMigrations,
  type MigrationCheckReport,
  type MigrationInvariant,
} from "./migration-check.js";
export {
  type AppliedMigration,
  createMigrator,
  type LocalMigration,
  type MigratableDatabase,
  MigrationError,
  type MigrationErrorCode,
  type MigrationState,
  type MigrationStatusEntry,
  type Migrator,
  type MigratorOptions,
  migrate,
  readMigrationsFolder,
  SCHEMA_MIGRATIONS_TABLE,
} from "./migrator.js";
export {
  BoundQuery,
  type PlaceholderValues,
  type Preparable,
  type PreparedQuery,
  preparedQuery,
} from "./prepared.js";
export { createRetryRunner, type RetryEvent, type RetryPolicyOptions, type RetryRunner } from "./retry.js";
export { createSemaphore, type Release, type Semaphore } from "./semaphore.js";
