import type { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { type AccessRequirements, access } from "@autoforge/server";

/**
 * What each DatasetService method needs of its caller in the request's project: the rules of
 * `evaluationAccess` (src/access.ts), editors write, viewers read, service principals are admitted nowhere.
 * Every method is listed (no `default`), so a method added to the proto without an entry here fails at
 * `defineService`.
 */
export const datasetAccess = {
  methods: {
    createDataset: access.editor(),
    getDataset: access.viewer(),
    listDatasets: access.viewer(),
    createDatasetVersion: access.editor(),
    uploadDatasetItems: access.editor(),
    listDatasetItems: access.viewer(),
    diffDatasetVersions: access.viewer(),
  },
} as const satisfies AccessRequirements<typeof DatasetService>;
