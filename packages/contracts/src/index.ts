// The v1 contracts as protobuf-es file descriptors. Import messages and services from the
// subpaths (`@autoforge/contracts/prompt/v1`, `/evaluation/v1`, `/evaluation/v1/datasets`,
// `/evaluation/v1/promotions`, `/admin/v1`; the google.rpc error model from `/google/rpc/status` and
// `/google/rpc/error_details`); this list serves whoever needs every file at once, such as gRPC
// server reflection.
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { file_autoforge_admin_v1_admin_service } from "./gen/autoforge/admin/v1/admin_service_pb.js";
import { file_autoforge_evaluation_v1_dataset_service } from "./gen/autoforge/evaluation/v1/dataset_service_pb.js";
import { file_autoforge_evaluation_v1_evaluation_service } from "./gen/autoforge/evaluation/v1/evaluation_service_pb.js";
import { file_autoforge_evaluation_v1_promotion_service } from "./gen/autoforge/evaluation/v1/promotion_service_pb.js";
import { file_autoforge_prompt_v1_prompt_service } from "./gen/autoforge/prompt/v1/prompt_service_pb.js";

export const contractFiles: readonly GenFile[] = [
  file_autoforge_prompt_v1_prompt_service,
  file_autoforge_evaluation_v1_evaluation_service,
  file_autoforge_evaluation_v1_dataset_service,
  file_autoforge_evaluation_v1_promotion_service,
  file_autoforge_admin_v1_admin_service,
];
