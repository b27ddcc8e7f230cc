// @autoforge/client: the universal part (any connect-es Transport). Node transports: "@autoforge/client/node";
// browsers: "@autoforge/client/web".
export * from "./cache/index.js";
