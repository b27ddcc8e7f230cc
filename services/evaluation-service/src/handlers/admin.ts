import {
  type AdminService,
  type AuditEventSchema,
  type ListAuditEventsRequest,
  MaintenanceTask,
  type RunMaintenanceRequest,
} from "@autoforge/contracts/admin/v1";
import {
  AUDIT_GENESIS_HASH,
  type AuditEvent,
  type Database,
  listAuditEvents,
  verifyAuditChain,
} from "@autoforge/db";
import type { ServiceHandlers } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { listConsumerOffsets } from "../db/repository.js";
import type { Schema } from "../db/schema.js";
import { decodePageToken, encodePageToken, filterDigest, resolvePageSize } from "../domain/page-token.js";
import {
  allMaintenanceTasks,
  databaseStats,
  type Maintenance,
  type MaintenanceTaskName,
} from "../maintenance.js";
import type { Ctx, EvaluationTx } from "./common.js";

type H = ServiceHandlers<typeof AdminService, EvaluationTx>;

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

/**
 * AdminService for this service's own database; every method needs the `admin` role (see server.ts).
 * Copied from prompt-service (same kit calls), plus the event consumers' lag in GetDatabaseStats.
 */
export function createAdminHandlers(deps: { db: Database<Schema>; maintenance: Maintenance }): H {
  const { db, maintenance } = deps;
  return {
    async listAuditEvents(req: ListAuditEventsRequest, ctx: Ctx) {
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
      const page = rows.slice(0, pageSize);
      const last = page[page.length - 1];
      return {
        events: page.map(auditEventMessage),
        nextPageToken:
          rows.length > pageSize && last !== undefined ? encodePageToken([last.seq], digest) : "",
      };
    },
    async verifyAuditChain(_req, ctx: Ctx) {
      const result = await verifyAuditChain(db, { deadline: ctx.deadline, signal: ctx.signal });
      return result.ok
        ? { ok: true, checkedCount: BigInt(result.count) }
        : {
            ok: false,
            checkedCount: BigInt(result.checked),
            firstBrokenSequence: BigInt(result.firstBrokenSequence),
            reason: `${result.reason}: ${result.detail}`,
          };
    },
    async runMaintenance(req: RunMaintenanceRequest) {
      const tasks =
        req.tasks.length === 0
          ? allMaintenanceTasks
          : req.tasks.map((t) => taskNames[t]).filter((t): t is MaintenanceTaskName => t !== undefined);
      const results = await maintenance.run(tasks);
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
      const consumers = await db.read((tx) => listConsumerOffsets(tx), {
        deadline: ctx.deadline,
        signal: ctx.signal,
      });
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
        consumers: consumers.map((c) => ({
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
