import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Where the bearer token comes from: a fixed string (a service token minted for this app), or a function that
 * fetches one (from a secret store, an identity provider, a file that a sidecar rotates). An empty string sends
 * no `authorization` header.
 */
export type TokenSource = string | (() => string | Promise<string>);

/** The token each call sends, cached between calls. */
export interface TokenProvider {
  /**
   * The token to send now. A function source is called lazily (on the first call) and again when the cached
   * token nears its expiry; concurrent callers share one refresh. Rejects with UNAUTHENTICATED (the provider's
   * error as `cause`) when the provider fails and no unexpired token is cached, or with the abort reason when
   * `signal` aborts first.
   */
  token(signal?: AbortSignal): Promise<string>;
  /** Forgets `token` if it is the cached one (the server refused it): the next call asks the provider again. */
  invalidate(token: string): void;
}

export interface TokenProviderOptions {
  /** Epoch ms; for tests. */
  now?: () => number;
  /** Refresh when less than this remains of the token's life. Default 30 s. */
  minRemainingMs?: number;
  /** ... or less than this fraction of its life. Default 0.1. */
  minRemainingFraction?: number;
}

interface Cached {
  readonly token: string;
  /** Epoch ms from which a call refreshes first. */
  readonly refreshAt: number;
  /** Epoch ms after which the token is not sent any more (it would be refused). */
  readonly expiresAt: number;
}

export function createTokenProvider(source: TokenSource, options: TokenProviderOptions = {}): TokenProvider {
  if (typeof source === "string") {
    return { token: () => Promise.resolve(source), invalidate: () => {} };
  }
  const fetchToken = source;
  const now = options.now ?? Date.now;
  const minRemainingMs = options.minRemainingMs ?? 30_000;
  const minRemainingFraction = options.minRemainingFraction ?? 0.1;
  let cached: Cached | undefined;
  let refreshing: Promise<string> | undefined;

  function remember(token: string, fetchedAt: number): Cached {
    const claims = jwtTimes(token);
    if (claims === undefined) {
      // No readable `exp` (an opaque token): kept until the server refuses it.
      return { token, refreshAt: Number.POSITIVE_INFINITY, expiresAt: Number.POSITIVE_INFINITY };
    }
    const issuedAt = claims.issuedAt ?? fetchedAt;
    const life = Math.max(0, claims.expiresAt - issuedAt);
    // At most half its life, so a short-lived token is still reused for a while.
    const margin = Math.min(Math.max(minRemainingMs, minRemainingFraction * life), life / 2);
    return { token, refreshAt: claims.expiresAt - margin, expiresAt: claims.expiresAt };
  }

  function refresh(): Promise<string> {
    refreshing ??= (async () => {
      const fetchedAt = now();
      let token: unknown;
      try {
        token = await fetchToken();
      } catch (cause) {
        throw new ConnectError(
          `token provider failed: ${cause instanceof Error ? cause.message : String(cause)}`,
          Code.Unauthenticated,
          undefined,
          undefined,
          cause,
        );
      }
      if (typeof token !== "string" || token === "") {
        throw new ConnectError("token provider returned no token", Code.Unauthenticated);
      }
      cached = remember(token, fetchedAt);
      return token;
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  async function current(): Promise<string> {
    const at = now();
    const held = cached;
    if (held !== undefined && at < held.refreshAt) return held.token;
    try {
      return await refresh();
    } catch (e) {
      // A refresh before expiry that failed: the token in hand is still good, use it (the next call retries).
      if (held !== undefined && now() < held.expiresAt && cached === held) return held.token;
      throw e;
    }
  }

  return {
    token(signal) {
      if (signal === undefined) return current();
      if (signal.aborted) return Promise.reject(abortReason(signal));
      return new Promise<string>((resolve, reject) => {
        const onAbort = () => reject(abortReason(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        current().then(
          (t) => {
            signal.removeEventListener("abort", onAbort);
            resolve(t);
          },
          (e: unknown) => {
            signal.removeEventListener("abort", onAbort);
            reject(e);
          },
        );
      });
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

/**
 * `exp` and `iat` of a JWT, in epoch ms, read WITHOUT verifying the signature (the client only needs to know when
 * to refresh; the server verifies). Undefined when the token is not a JWT or has no numeric `exp`.
 */
export function jwtTimes(token: string): { expiresAt: number; issuedAt?: number } | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    return undefined;
  }
  if (typeof claims !== "object" || claims === null) return undefined;
  const { exp, iat } = claims as { exp?: unknown; iat?: unknown };
  if (typeof exp !== "number" || !Number.isFinite(exp)) return undefined;
  return typeof iat === "number" && Number.isFinite(iat)
    ? { expiresAt: exp * 1000, issuedAt: iat * 1000 }
    : { expiresAt: exp * 1000 };
}

/** base64url to a UTF-8 string with what browsers and Node both have (atob, TextDecoder). */
function base64UrlDecode(text: string): string {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

function abortReason(signal: AbortSignal): unknown {
  return ConnectError.from(signal.reason ?? new Error("the operation was aborted"), Code.Canceled);
}
