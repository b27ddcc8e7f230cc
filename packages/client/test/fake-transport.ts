import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import type { StreamResponse, Transport, UnaryResponse } from "@connectrpc/connect";

/** One call as the transport under the client saw it: one attempt. */
export interface Attempt {
  readonly method: DescMethod;
  readonly input: Record<string, unknown>;
  readonly header: Headers;
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal | undefined;
}

/** What the fake answers to an attempt: the output message (init shape), or it throws. Streams: a list. */
export type Respond = (attempt: Attempt, n: number) => unknown;

export interface FakeTransport extends Transport {
  readonly attempts: Attempt[];
  /** Attempts of one method (by its proto name, e.g. "GetPrompt"). */
  count(methodName: string): number;
}

/** A Transport that records every attempt and answers with `respond` (the n-th attempt of that method, from 1). */
export function fakeTransport(respond: Respond = () => ({})): FakeTransport {
  const attempts: Attempt[] = [];
  const perMethod = new Map<string, number>();
  const record = (
    method: DescMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0],
    input: unknown,
  ) => {
    const attempt: Attempt = {
      method,
      input: { ...(input as Record<string, unknown>) },
      header: new Headers(header),
      timeoutMs,
      signal,
    };
    attempts.push(attempt);
    const n = (perMethod.get(method.name) ?? 0) + 1;
    perMethod.set(method.name, n);
    return { attempt, n };
  };
  return {
    attempts,
    count: (name) => perMethod.get(name) ?? 0,
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const { attempt, n } = record(method, signal, timeoutMs, header, input);
      const output = await respond(attempt, n);
      return {
        stream: false,
        service: method.parent,
        method,
        header: new Headers(),
        message: create(method.output, output as MessageInitShape<O>),
        trailer: new Headers(),
      };
    },
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      let request: unknown;
      for await (const m of input) request = m;
      const { attempt, n } = record(method, signal, timeoutMs, header, request);
      const outputs = (await respond(attempt, n)) as MessageInitShape<O>[];
      async function* messages() {
        for (const o of outputs) yield create(method.output, o);
      }
      return {
        stream: true,
        service: method.parent,
        method,
        header: new Headers(),
        message: messages(),
        trailer: new Headers(),
      };
    },
  };
}
