export {
  type AdminServiceDeps,
  adminValidators,
  type ConsumerStats,
  createAdminHandlers,
  createAdminService,
} from "./admin-service.js";
export {
  allMaintenanceTasks,
  createMaintenance,
  type DatabaseStats,
  databaseStats,
  type Maintenance,
  type MaintenanceResult,
  type MaintenanceTaskName,
} from "./maintenance.js";
