export {
  type AdminServiceDeps,
  adminValidators,
  type ConsumerStats,
  createAdminHandlers,
  createAdminService,
} from "./admin-service.js";
export {
  type AuditTrail,
  type AuditTrailLogger,
  createAuditTrail,
  unkeyedAuditTrail,
} from "./audit-trail.js";
export {
  allMaintenanceTasks,
  createMaintenance,
  type DatabaseStats,
  databaseStats,
  type Maintenance,
  type MaintenanceHistory,
  type MaintenanceLogger,
  type MaintenanceOptions,
  type MaintenanceOutcome,
  type MaintenanceResult,
  type MaintenanceRunOptions,
  type MaintenanceTaskName,
  maintenanceAuditAction,
  notApplicableReason,
} from "./maintenance.js";
export {
  createMaintenanceScheduler,
  type MaintenanceScheduler,
  type MaintenanceSchedulerOptions,
} from "./scheduler.js";
