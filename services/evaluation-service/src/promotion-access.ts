import type { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import { type AccessRequirements, access } from "@autoforge/server";

/**
 * What each PromotionService method needs in the project it names (see access.ts). A policy decides what may
 * reach a label such as `production`, so setting it needs `admin`; promoting is what a `publisher` would
 * otherwise do by moving a protected label. Service principals are admitted nowhere.
 */
export const promotionAccess = {
  methods: {
    setPromotionPolicy: access.admin(),
    getPromotionPolicy: access.viewer(),
    promotePromptVersion: access.publisher(),
    listPromotions: access.viewer(),
  },
} as const satisfies AccessRequirements<typeof PromotionService>;
