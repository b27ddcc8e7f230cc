import { type DescMethod, type DescService, type Message, ScalarType } from "@bufbuild/protobuf";
import type { CallContext, ServiceHandlers } from "./context.js";
import type { Access } from "./projects.js";
import type { Validators } from "./validation.js";

/**
 * What each method needs of its caller: one declaration per method (a method's own, else the service's
 * `default`). `defineService` refuses a service where a method has neither, so no RPC is open by omission.
 */
export interface AccessRequirements<S extends DescService> {
  readonly default?: Access;
  readonly methods?: { readonly [K in keyof S["method"]]?: Access };
}

/** What a service brings to `createServer`. Use `defineService` so handlers are checked against the service. */
export interface ServiceRegistration<S extends DescService, Tx = unknown> {
  readonly service: S;
  readonly handlers: ServiceHandlers<S, Tx>;
  readonly validators?: Validators;
  readonly access: AccessRequirements<S>;
  /**
   * Unary methods whose handler runs several units of work one after another (each commits on its own), for a
   * workflow around a call to another service: record a decision, make the call, record its outcome. Every
   * other unary method runs at most one (its work is atomic).
   */
  readonly stepwise?: readonly (keyof S["method"] & string)[];
}

/**
 * A handler with its types erased: the chain calls it with a decoded request, or for a client-streaming method
 * with the iterable of its requests.
 */
export type AnyHandler<Tx> = (
  request: Message | AsyncIterable<Message>,
  ctx: CallContext<Tx>,
) => Promise<unknown> | AsyncIterable<unknown>;

/** A registration checked and with its types erased, ready for both ports. */
export interface RegisteredService<Tx = unknown> {
  readonly service: DescService;
  readonly methods: readonly DescMethod[];
  handler(method: DescMethod): AnyHandler<Tx>;
  readonly validators: Validators;
  /** What the method needs of its caller (declared for every method). */
  access(method: DescMethod): Access;
  /** Whether the method's request has a `project` field (the project the call acts in). */
  hasProjectField(method: DescMethod): boolean;
  /** Whether the (unary) method may run several units of work, one after another (`stepwise`). */
  isStepwise(method: DescMethod): boolean;
}

/**
 * Checks a service registration (every method has a handler; unary, server-streaming and client-streaming
 * methods, not bidirectional ones) and erases its types so services with different descriptors fit in one list.
 */
export function defineService<S extends DescService, Tx = unknown>(
  registration: ServiceRegistration<S, Tx>,
): RegisteredService<Tx> {
  const { service, validators = new Map(), access } = registration;
  const handlers = registration.handlers as unknown as Record<string, AnyHandler<Tx> | undefined>;
  const methodAccess = (access.methods ?? {}) as Record<string, Access | undefined>;
  const declared = new Map<string, Access>();
  const withProject = new Set<string>();
  for (const method of service.methods) {
    if (method.methodKind === "bidi_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
    }
    if (typeof handlers[method.localName] !== "function") {
      throw new Error(`${service.typeName}.${method.name}: no handler`);
    }
    const needs = methodAccess[method.localName] ?? access.default;
    if (needs === undefined) throw new Error(`${service.typeName}.${method.name}: no access declared`);
    const projectField = method.input.fields.find((f) => f.name === "project");
    const hasProject = projectField?.fieldKind === "scalar" && projectField.scalar === ScalarType.STRING;
    if (needs.kind !== "operator" && !hasProject) {
      throw new Error(`${service.typeName}.${method.name}: project access needs a string field \`project\``);
    }
    declared.set(method.localName, needs);
    if (hasProject) withProject.add(method.localName);
  }
  const stepwise = new Set<string>(registration.stepwise ?? []);
  for (const name of stepwise) {
    const method = service.methods.find((m) => m.localName === name);
    if (method?.methodKind !== "unary") {
      throw new Error(`${service.typeName}: stepwise names ${name}, which is not a unary method`);
    }
  }
  for (const name of Object.keys(methodAccess)) {
    if (!service.methods.some((m) => m.localName === name)) {
      throw new Error(`${service.typeName}: access declared for unknown method ${name}`);
    }
  }
  return {
    service,
    methods: service.methods,
    handler: (method) => handlers[method.localName] as AnyHandler<Tx>,
    validators,
    access: (method) => declared.get(method.localName) as Access,
    hasProjectField: (method) => withProject.has(method.localName),
    isStepwise: (method) => stepwise.has(method.localName),
  };
}
