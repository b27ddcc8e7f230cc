import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import type { CallContext, Role, ServiceHandlers } from "./context.js";
import type { Validators } from "./validation.js";

/** Roles a caller needs (any one of the list). A method's own list replaces the service's. */
export interface RoleRequirements<S extends DescService> {
  readonly service?: readonly Role[];
  readonly methods?: { readonly [K in keyof S["method"]]?: readonly Role[] };
}

/** What a service brings to `createServer`. Use `defineService` so handlers are checked against the service. */
export interface ServiceRegistration<S extends DescService, Tx = unknown> {
  readonly service: S;
  readonly handlers: ServiceHandlers<S, Tx>;
  readonly validators?: Validators;
  readonly roles?: RoleRequirements<S>;
}

/** A handler with its types erased: the chain calls it with a decoded request. */
export type AnyHandler<Tx> = (
  request: Message,
  ctx: CallContext<Tx>,
) => Promise<unknown> | AsyncIterable<unknown>;

/** A registration checked and with its types erased, ready for both ports. */
export interface RegisteredService<Tx = unknown> {
  readonly service: DescService;
  readonly methods: readonly DescMethod[];
  handler(method: DescMethod): AnyHandler<Tx>;
  readonly validators: Validators;
  /** undefined: any authenticated principal. */
  requiredRoles(method: DescMethod): readonly Role[] | undefined;
}

/**
 * Checks a service registration (every method has a handler; only unary and server-streaming methods) and
 * erases its types so services with different descriptors fit in one list.
 */
export function defineService<S extends DescService, Tx = unknown>(
  registration: ServiceRegistration<S, Tx>,
): RegisteredService<Tx> {
  const { service, validators = new Map(), roles } = registration;
  const handlers = registration.handlers as unknown as Record<string, AnyHandler<Tx> | undefined>;
  const methodRoles = (roles?.methods ?? {}) as Record<string, readonly Role[] | undefined>;
  for (const method of service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
    }
    if (typeof handlers[method.localName] !== "function") {
      throw new Error(`${service.typeName}.${method.name}: no handler`);
    }
  }
  for (const name of Object.keys(methodRoles)) {
    if (!service.methods.some((m) => m.localName === name)) {
      throw new Error(`${service.typeName}: roles declared for unknown method ${name}`);
    }
  }
  return {
    service,
    methods: service.methods,
    handler: (method) => handlers[method.localName] as AnyHandler<Tx>,
    validators,
    requiredRoles: (method) => methodRoles[method.localName] ?? roles?.service,
  };
}
