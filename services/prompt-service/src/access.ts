import type { PromptService } from "@autoforge/contracts/prompt/v1";
import { type AccessRequirements, access } from "@autoforge/server";

/**
 * The role each PromptService RPC needs in the project it names (docs/projects.md shows this table).
 * Reads are open to the project's service principals; the change feed only to service principals; SetPromptLabel
 * to the promotion gate, for gated labels.
 */
export const promptServiceAccess = {
  methods: {
    createPrompt: access.editor(),
    getPrompt: access.viewer({ service: true }),
    listPrompts: access.viewer({ service: true }),
    updatePrompt: access.editor(),
    deletePrompt: access.editor(),
    restorePrompt: access.editor(),
    // The owner of a personal project may purge, as before projects existed.
    purgePrompt: access.admin({ personal: "editor" }),
    listPromptVersions: access.viewer({ service: true }),
    diffPromptVersions: access.viewer({ service: true }),
    // Protected labels need `publisher` too, gated labels the promotion gate: checked by the handlers against
    // the project's settings. Service principals reach SetPromptLabel so that the gate (PROMOTION_GATE_SUBJECTS)
    // can move gated labels; the handler refuses every other move of a service principal.
    setPromptLabel: access.editor({ service: true }),
    removePromptLabel: access.editor(),
    listPromptLabelHistory: access.viewer({ service: true }),
    renderPrompt: access.viewer({ service: true }),
    getProjectSettings: access.viewer({ service: true }),
    updateProjectSettings: access.admin(),
    createPromptTemplate: access.editor(),
    getPromptTemplate: access.viewer({ service: true }),
    listPromptTemplates: access.viewer({ service: true }),
    renderPromptTemplate: access.viewer({ service: true }),
    listPromptEvents: access.feed(),
    watchPromptEvents: access.feed(),
  },
} as const satisfies AccessRequirements<typeof PromptService>;
