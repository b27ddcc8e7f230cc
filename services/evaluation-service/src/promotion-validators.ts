import {
  GetPromotionPolicyRequestSchema,
  ListPromotionsRequestSchema,
  PromotePromptVersionRequestSchema,
  SetPromotionPolicyRequestSchema,
} from "@autoforge/contracts/evaluation/v1/promotions";
import {
  createValidators,
  defineValidator,
  pageSizeRule,
  pageTokenRule,
  type Validators,
} from "@autoforge/server";
import { z } from "zod";
import { chars, uuid } from "./field-rules.js";

/** PromotionService's request rules (see validators.ts): INVALID_ARGUMENT naming the field, before any handler. */

/** A label as prompt-service takes it: [a-z0-9_-]{1,36}, not `latest` (the computed newest version). */
const label = z
  .string()
  .regex(/^[a-z0-9_-]{1,36}$/, "must match [a-z0-9_-]{1,36}")
  .refine((l) => l !== "latest", "`latest` always points to the newest version and is never promoted");

const rate = z.number().min(0, "must be between 0 and 1").max(1, "must be between 0 and 1");

export const promotionValidators: Validators = createValidators(
  defineValidator(SetPromotionPolicyRequestSchema, {
    policy: z.object(
      {
        label,
        datasetId: uuid,
        minPassRate: rate.optional(),
        minMeanScore: rate.optional(),
        alpha: z
          .number()
          .refine(
            (a) => a === 0 || (a > 0 && a < 0.5),
            "must be above 0 and below 0.5 (0: the default 0.05)",
          ),
      },
      "is required",
    ),
  }),
  defineValidator(GetPromotionPolicyRequestSchema, { label }),
  defineValidator(PromotePromptVersionRequestSchema, {
    promptId: uuid,
    version: z.int().min(1, "must be >= 1"),
    label,
    reason: chars(0, 500),
  }),
  defineValidator(ListPromotionsRequestSchema, {
    promptId: z.union([z.literal(""), uuid]),
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
);
