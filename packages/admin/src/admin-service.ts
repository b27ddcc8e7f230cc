import {
  AdminService,
  type AuditEventSchema,
  ListAuditEventsRequestSchema,
  MaintenanceTask,
  RunMaintenanceRequestSchema,
} from "@autoforge/contracts/admin/v1";
import {
  AUDIT_GENESIS_HASH,
  type AuditCheckpointExpectations,
  type AuditEvent,
  type AuditKeyring,
  type Database,
  listAuditEvents,
  type Tx,
  verifyAuditChain,
} from "@autoforge/db";
import {
  access,
  type CallContext,
  createValidators,
  decodePageToken,
  defineService,
  defineValidator,
  filterDigest,
  keysetPage,
  pageSizeRule,
  pageTokenRule,
  type RegisteredService,
  resolvePageSize,
  type ServiceHandlers,
  type Validators,
} from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { z } from "zod";
import {
  allMaintenanceTasks,
  databaseStats,
  type Maintenance,
  type MaintenanceTaskName,
} from "./maintenance.js";

/** An event-feed consumer's position, for GetDatabaseStats (services that consume a feed). */
export interface ConsumerStats {
  readonly name: string;
  readonly lastAppliedSequence: number;
  readonly lastSeenSequence: number;
  readonly updatedAt: number;
}

export interface AdminServiceDeps<TSchema extends Record<string, unknown>> {
  readonly db: Database<TSchema>;
  readonly maintenance: Maintenance;
  /** The service's event-feed consumers, read in one read unit of work; reported with their lag. */
  readonly consumers?: (tx: Tx<TSchema>) => Promise<readonly ConsumerStats[]>;
  /** The audit chain's HMAC keys and signed checkpoints (docs/audit.md); without them, the unkeyed chain. */
  readonly audit?: {
    readonly keys?: AuditKeyring | undefined;
    readonly checkpoints?: { expectations(): Promise<AuditCheckpointExpectations> } | undefined;
  };
}

const taskNames: Record<MaintenanceTask, MaintenanceTaskName | undefined> = {
  [MaintenanceTask.UNSPECIFIED]: undefined,
  [MaintenanceTask.ANALYZE]: "analyze",
  [MaintenanceTask.OPTIMIZE]: "optimize",
  [MaintenanceTask.VACUUM]: "vacuum",
  [MaintenanceTask.REINDEX]: "reindex",
  [MaintenanceTask.INTEGRITY_CHECK]: "integrity_check",
};
const taskEnums = new Map(Object.entries(taskNames).map(([k, v]) => [v, Number(k) as MaintenanceTask]));

function auditEventMessage(e: AuditEvent): MessageInitShape<typeof AuditEventSchema> {
  return {
    sequence: BigInt(e.seq),
    occurTime: timestampFromMs(e.occurredAt),
    actor: e.actor,
    action: e.action,
    resourceType: e.resourceType,
    resourceId: e.resourceId,
    requestId: e.requestId ?? "",
    digest: e.digest,
    prevHash: e.prevHash === AUDIT_GENESIS_HASH ? "" : e.prevHash,
    hash: e.hash,
  };
}

export const adminValidators: Validators = createValidators(
  defineValidator(ListAuditEventsRequestSchema, {
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
    resourceType: z.string().max(100, "at most 100 characters"),
    resourceId: z.string().max(200, "at most 200 characters"),
    actor: z.string().max(200, "at most 200 characters"),
  }),
  defineValidator(RunMaintenanceRequestSchema, {
    tasks: z.array(
      z
        .enum(MaintenanceTask, "is not a known MaintenanceTask")
        .refine((t) => t !== MaintenanceTask.UNSPECIFIED, "must be set"),
    ),
  }),
);

/** AdminService handlers for one service's own database. */
export function createAdminHandlers<TSchema extends Record<string, unknown>>(
  deps: AdminServiceDeps<TSchema>,
): ServiceHandlers<typeof AdminService, Tx<TSchema>> {
  const { db, maintenance, consumers, audit } = deps;
  type Ctx = CallContext<Tx<TSchema>>;
  return {
    async listAuditEvents(req, ctx: Ctx) {
      const pageSize = resolvePageSize(req.pageSize);
      const filters = {
        resourceType: req.resourceType === "" ? undefined : req.resourceType,
        resourceId: req.resourceId === "" ? undefined : req.resourceId,
        actor: req.actor === "" ? undefined : req.actor,
      };
      const digest = filterDigest("ListAuditEvents", {
        resourceType: filters.resourceType ?? null,
        resourceId: filters.resourceId ?? null,
        actor: filters.actor ?? null,
      });
      const key = decodePageToken(req.pageToken, digest, ["number"]);
      const rows = await listAuditEvents(
        db,
        { ...filters, afterSeq: key?.[0] as number | undefined, limit: pageSize + 1 },
        { deadline: ctx.deadline, signal: ctx.signal },
      );
      const { page, nextPageToken } = keysetPage(rows, pageSize, digest, (last) => [last.seq]);
      return { events: page.map(auditEventMessage), nextPageToken };
    },
    async verifyAuditChain(_req, ctx: Ctx) {
      const result = await verifyAuditChain(db, {
        deadline: ctx.deadline,
        signal: ctx.signal,
        keys: audit?.keys,
        checkpoints: await audit?.checkpoints?.expectations(),
      });
      const facts = {
        firstKeyedSequence: BigInt(result.firstKeyedSequence),
        checkpointCount: result.checkpointCount,
        lastCheckpointSequence: BigInt(result.lastCheckpointSequence),
      };
      return result.ok
        ? { ok: true, checkedCount: BigInt(result.count), ...facts }
        : {
            ok: false,
            checkedCount: BigInt(result.checked),
            firstBrokenSequence: BigInt(result.firstBrokenSequence),
            reason: `${result.reason}: ${result.detail}`,
            ...facts,
          };
    },
    async runMaintenance(req, ctx: Ctx) {
      const tasks =
        req.tasks.length === 0
          ? allMaintenanceTasks
          : req.tasks.map((t) => taskNames[t]).filter((t): t is MaintenanceTaskName => t !== undefined);
      const results = await maintenance.run(tasks, {
        actor: ctx.principal.subject,
        requestId: ctx.requestId,
      });
      return {
        results: results.map((r) => ({
          task: taskEnums.get(r.task) ?? MaintenanceTask.UNSPECIFIED,
          ok: r.ok,
          detail: r.detail,
          duration: durationFromMs(Math.round(r.durationMs)),
        })),
      };
    },
    async getDatabaseStats(_req, ctx: Ctx) {
      const stats = await databaseStats(db);
      // Event-feed consumers: lag = newest sequence seen in the feed - last sequence applied here.
      const offsets =
        consumers === undefined
          ? []
          : await db.read((tx) => consumers(tx), { deadline: ctx.deadline, signal: ctx.signal });
      return {
        pageSize: BigInt(stats.pageSize),
        pageCount: BigInt(stats.pageCount),
        freelistCount: BigInt(stats.freelistCount),
        sizeBytes: BigInt(stats.pageSize * stats.pageCount),
        journalMode: stats.journalMode,
        objects: stats.objects.map((o) => ({
          name: o.name,
          type: o.type,
          rowCount: BigInt(o.rowCount),
          sizeBytes: BigInt(o.sizeBytes),
        })),
        consumers: offsets.map((c) => ({
          name: c.name,
          lastAppliedSequence: BigInt(c.lastAppliedSequence),
          lastSeenSequence: BigInt(c.lastSeenSequence),
          lag: BigInt(Math.max(0, c.lastSeenSequence - c.lastAppliedSequence)),
          updateTime: timestampFromMs(c.updatedAt),
        })),
        lastMaintenanceTimes: Object.fromEntries(
          [...maintenance.lastCompleted].map(([task, at]) => [task, timestampFromMs(at)]),
        ),
      };
    },
  };
}

/**
 * AdminService for this service's own database, ready for `createServer({ services: [...] })`: its handlers,
 * its request validators, and every method restricted to the `admin` role.
 */
export function createAdminService<TSchema extends Record<string, unknown>>(
  deps: AdminServiceDeps<TSchema>,
): RegisteredService<Tx<TSchema>> {
  return defineService({
    service: AdminService,
    handlers: createAdminHandlers(deps),
    validators: adminValidators,
    access: { default: access.operator() },
  });
}
