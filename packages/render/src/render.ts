import { RenderError } from "./errors.js";
import { renderLimits } from "./limits.js";
import { refTarget, type Token, tokenize } from "./placeholders.js";
import type {
  ChatMessage,
  IncludeRef,
  JsonValue,
  PromptBody,
  RenderableVersion,
  UsedVersion,
} from "./types.js";
import { resolveValues } from "./variables.js";

/** Walks tokens once: values and included texts are inserted as they are, never scanned again. */
function renderTokens(
  tokens: readonly Token[],
  values: ReadonlyMap<string, string>,
  include: (ref: IncludeRef) => string,
): string {
  let out = "";
  for (const t of tokens) {
    if (t.kind === "text") out += t.text;
    else if (t.kind === "variable") out += values.get(t.name) ?? t.raw;
    else if (t.kind === "include") out += include(t.ref);
    // a malformed include only gets here from text stored before includes existed: it was literal then
    else out += t.raw;
  }
  return out;
}

/**
 * Substitutes `{{var}}` from `values` (see resolveValues) in one pass; a name without a value and every
 * include stay as written. Templates render this way.
 */
export function renderText(text: string, values: ReadonlyMap<string, string>): string {
  return renderTokens(tokenize(text), values, (ref) => ref.raw);
}

export interface RenderPromptOptions {
  readonly root: RenderableVersion;
  /** The label the root was resolved by, reported in `used[0]` and shown in include chains. */
  readonly rootLabel?: string;
  readonly variables: Readonly<Record<string, JsonValue | undefined>>;
  /** Looks an include up (the service: in its database, same project); undefined when there is none. */
  readonly resolve: (ref: IncludeRef, from: RenderableVersion) => Promise<RenderableVersion | undefined>;
  /** Levels of includes allowed below the root; default 5. */
  readonly maxDepth?: number;
}

export interface RenderedPrompt {
  readonly body: PromptBody;
  /** The root first, then each included version in order of first use, each once. */
  readonly used: UsedVersion[];
}

/** A version whose include tree is loaded. */
interface Loaded {
  readonly version: RenderableVersion;
  /** One token list per text (the text, or each message's content). */
  readonly parts: readonly (readonly Token[])[];
  /** Include target (`name@label`) -> key of the version it resolved to. */
  readonly children: ReadonlyMap<string, string>;
  /** Levels of includes below this version. */
  readonly height: number;
  /** Prompt ids of this version and everything below it. */
  readonly ids: ReadonlySet<string>;
}

const keyOf = (v: { readonly promptId: string; readonly version: number }) => `${v.promptId}\n${v.version}`;

/** A body's texts tokenized, and whether any of them includes another prompt. */
interface Tokenized {
  readonly parts: readonly (readonly Token[])[];
  readonly hasIncludes: boolean;
}

/**
 * Tokenized bodies, per body object: a client that renders the same cached version many times tokenizes it
 * once. Bodies are read-only data (`PromptBody`); a new body (a new version) is a new object, so an entry can
 * never be outdated, and it goes with its body when that is garbage-collected.
 */
const tokenizedBodies = new WeakMap<PromptBody, Tokenized>();

function tokenized(body: PromptBody): Tokenized {
  let done = tokenizedBodies.get(body);
  if (done === undefined) {
    const parts =
      body.kind === "text" ? [tokenize(body.text)] : body.messages.map((m) => tokenize(m.content));
    const hasIncludes = parts.some((tokens) => tokens.some((t) => t.kind === "include"));
    done = { parts, hasIncludes };
    tokenizedBodies.set(body, done);
  }
  return done;
}

const noIncludes = (ref: IncludeRef): string => ref.raw;

/**
 * A version without includes: the general path below reduced to what it does then (one version, its own
 * declarations, no resolve calls), without the include-tree bookkeeping. Same answers, same errors.
 */
function renderWithoutIncludes(
  root: RenderableVersion,
  rootLabel: string | undefined,
  variables: Readonly<Record<string, JsonValue | undefined>>,
  parts: readonly (readonly Token[])[],
): RenderedPrompt {
  // resolveValues refuses the first undeclared input name, as the general path's check does
  const values = resolveValues(root.variables, variables);
  const used: UsedVersion[] = [
    rootLabel === undefined
      ? { promptId: root.promptId, name: root.name, version: root.version }
      : { promptId: root.promptId, name: root.name, version: root.version, label: rootLabel },
  ];
  if (root.body.kind === "text") {
    return {
      body: { kind: "text", text: renderTokens(parts[0] as readonly Token[], values, noIncludes) },
      used,
    };
  }
  const messages = root.body.messages.map(
    (m, i): ChatMessage => ({
      role: m.role,
      content: renderTokens(parts[i] as readonly Token[], values, noIncludes),
      ...(m.name === undefined || m.name === "" ? {} : { name: m.name }),
    }),
  );
  return { body: { kind: "chat", messages }, used };
}

/**
 * Renders a prompt version with its includes. The include tree is loaded first (depth-first, each
 * `(version, target)` resolved once so one render sees one answer per reference), then the variables are
 * checked against every version's own declarations, then the texts are rendered, each version once.
 */
export async function renderPrompt(options: RenderPromptOptions): Promise<RenderedPrompt> {
  const { root, rootLabel, variables, resolve } = options;
  const rootTokens = tokenized(root.body);
  if (!rootTokens.hasIncludes) return renderWithoutIncludes(root, rootLabel, variables, rootTokens.parts);
  const maxDepth = options.maxDepth ?? renderLimits.includeDepthMax;
  const loaded = new Map<string, Loaded>();
  const resolved = new Map<string, RenderableVersion>();
  const used: UsedVersion[] = [];
  const usedKeys = new Set<string>();

  const load = async (
    v: RenderableVersion,
    label: string | undefined,
    chain: readonly string[],
    ancestors: readonly string[],
  ): Promise<Loaded> => {
    const key = keyOf(v);
    const done = loaded.get(key);
    // a version already loaded is loaded again only where depth or a cycle depends on the path: that walk throws
    if (done !== undefined && chain.length - 1 + done.height <= maxDepth) {
      if (!ancestors.some((id) => done.ids.has(id))) return done;
    }
    if (!usedKeys.has(key)) {
      usedKeys.add(key);
      used.push({
        promptId: v.promptId,
        name: v.name,
        version: v.version,
        ...(label === undefined ? {} : { label }),
      });
    }
    const parts = done?.parts ?? tokenized(v.body).parts;
    const children = new Map<string, string>();
    const ids = new Set([v.promptId]);
    const path = [...ancestors, v.promptId];
    let height = 0;
    for (const tokens of parts) {
      for (const t of tokens) {
        if (t.kind !== "include") continue;
        const target = refTarget(t.ref);
        const next = [...chain, target];
        if (next.length - 1 > maxDepth) {
          throw RenderError.precondition(
            `includes nested deeper than ${maxDepth} levels: ${next.join(" -> ")}`,
          );
        }
        const at = `include {{> ${target}}} of ${v.name} v${v.version}`;
        const refKey = `${key}\n${target}`;
        let child = resolved.get(refKey);
        if (child === undefined) {
          child = await resolve(t.ref, v);
          if (child === undefined) throw RenderError.precondition(`${at}: not found`);
          if (child.body.kind !== "text") {
            throw RenderError.precondition(
              `${at}: ${child.name} v${child.version} is a chat prompt; only text prompts can be included`,
            );
          }
          resolved.set(refKey, child);
        }
        if (path.includes(child.promptId))
          throw RenderError.precondition(`include cycle: ${next.join(" -> ")}`);
        const c = await load(child, t.ref.label, next, path);
        children.set(target, keyOf(child));
        height = Math.max(height, c.height + 1);
        for (const id of c.ids) ids.add(id);
      }
    }
    const entry: Loaded = { version: v, parts, children, height, ids };
    loaded.set(key, entry);
    return entry;
  };

  const top = await load(root, rootLabel, [`${root.name}@${rootLabel ?? root.version}`], []);

  const declaredAnywhere = new Set<string>();
  for (const { version } of loaded.values()) for (const d of version.variables) declaredAnywhere.add(d.name);
  for (const name of Object.keys(variables)) {
    if (!declaredAnywhere.has(name)) throw RenderError.invalid(`variables.${name}`, "is not declared");
  }
  const values = new Map<string, Map<string, string>>();
  for (const u of used) {
    const entry = loaded.get(keyOf(u)) as Loaded;
    const own: Record<string, JsonValue | undefined> = {};
    for (const d of entry.version.variables)
      if (Object.hasOwn(variables, d.name)) own[d.name] = variables[d.name];
    values.set(keyOf(u), resolveValues(entry.version.variables, own));
  }

  const texts = new Map<string, string>();
  const renderPart = (entry: Loaded, tokens: readonly Token[]): string =>
    renderTokens(tokens, values.get(keyOf(entry.version)) as Map<string, string>, (ref) => {
      const childKey = entry.children.get(refTarget(ref)) as string;
      let text = texts.get(childKey);
      if (text === undefined) {
        const child = loaded.get(childKey) as Loaded;
        text = renderPart(child, child.parts[0] as readonly Token[]);
        texts.set(childKey, text);
      }
      return text;
    });

  if (root.body.kind === "text") {
    return { body: { kind: "text", text: renderPart(top, top.parts[0] as readonly Token[]) }, used };
  }
  const messages = root.body.messages.map(
    (m, i): ChatMessage => ({
      role: m.role,
      content: renderPart(top, top.parts[i] as readonly Token[]),
      ...(m.name === undefined || m.name === "" ? {} : { name: m.name }),
    }),
  );
  return { body: { kind: "chat", messages }, used };
}
