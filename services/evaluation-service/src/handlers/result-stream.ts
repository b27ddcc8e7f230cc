import {
  type EvaluationService,
  RecordTestResultsResponseSchema,
  type StreamTestResultsRequest,
} from "@autoforge/contracts/evaluation/v1";
import {
  AlreadyExistsError,
  type FieldViolation,
  InvalidArgumentError,
  requestDigest,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { evaluationMessage } from "../convert.js";
import { requestIds } from "../db/repository.js";
import type { EvaluationRow } from "../db/schema.js";
import type { ScoreDeclaration } from "../domain/scores.js";
import {
  type Ctx,
  type EvaluationTx,
  type HandlerDeps,
  requestIdScope,
  requireEvaluation,
} from "./common.js";
import { batchDigestInput, batchValues, recordBatch } from "./record-batch.js";
import { createExportHandler } from "./result-export.js";
import { declarationsOf } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

/** The stream's own rules across its messages; each message was validated as a batch by the kit already. */
interface StreamState {
  /** The first message: its evaluation_id and request_id hold for the stream. */
  readonly first: StreamTestResultsRequest;
  /** The chunk_index the next message must have. */
  nextIndex: number;
}

/** Where a refusal arose, appended to its descriptions: the chunk and the message of the stream. */
function where(chunk: StreamTestResultsRequest, message: number): string {
  return `(chunk_index ${chunk.chunkIndex}, message ${message} of the stream)`;
}

/** `e`'s violations with `suffix` appended to each description (the fields stay the chunk's own). */
function located(e: InvalidArgumentError, suffix: string): InvalidArgumentError {
  const [first, ...more] = e.violations.map((v) => ({ ...v, description: `${v.description} ${suffix}` }));
  const { fieldViolations: _, ...details } = e.details;
  return new InvalidArgumentError([first as FieldViolation, ...more], details);
}

/**
 * The header rules: the first message names the evaluation and the request_id (without one a dropped stream
 * could not be resumed without recording chunks twice); a later one repeats them or leaves them empty, and has
 * the previous chunk_index plus one. The first may have any chunk_index (a resumed stream starts where it likes).
 */
function admit(
  state: StreamState | undefined,
  chunk: StreamTestResultsRequest,
  message: number,
): StreamState {
  const at = where(chunk, message);
  if (state === undefined) {
    const missing: FieldViolation[] = [];
    if (chunk.evaluationId === "")
      missing.push({ field: "evaluation_id", description: `is required in the first message ${at}` });
    if (chunk.requestId === "")
      missing.push({
        field: "request_id",
        description: `is required in the first message: it makes each chunk idempotent ${at}`,
      });
    const [bad, ...more] = missing;
    if (bad !== undefined) throw new InvalidArgumentError([bad, ...more]);
    return { first: chunk, nextIndex: chunk.chunkIndex + 1 };
  }
  const header: [string, boolean][] = [
    ["evaluation_id", chunk.evaluationId !== "" && chunk.evaluationId !== state.first.evaluationId],
    ["request_id", chunk.requestId !== "" && chunk.requestId !== state.first.requestId],
  ];
  const [bad, ...more] = header
    .filter(([, differs]) => differs)
    .map(([field]) => ({ field, description: `must be empty or the first message's ${at}` }));
  if (bad !== undefined) throw new InvalidArgumentError([bad, ...more]);
  if (chunk.chunkIndex !== state.nextIndex) {
    throw new InvalidArgumentError(
      "chunk_index",
      `must be ${state.nextIndex}, one more than the previous message's ${at}`,
    );
  }
  state.nextIndex++;
  return state;
}

/**
 * StreamTestResults: each chunk is committed in a write unit of work of its own as it arrives (recordBatch, the
 * same as a RecordTestResults batch: all of the chunk or none, only while RUNNING), so an error or a dropped
 * connection keeps the chunks before it. Each chunk is idempotent under (request_id, chunk_index): the
 * idempotency key store's (owner, `StreamTestResults#<chunk_index>`, request_id), the chunk index in the method
 * column so the key is the caller's request_id as for every other method (up to 64 characters, the column's
 * limit). A chunk found there with the same digest was committed by an earlier stream: it is skipped; one with
 * another digest is INVALID_ARGUMENT (CHUNK_CHANGED) naming chunk_index. The response is sent once the client
 * ends its stream; nothing waits for that end to commit (every chunk committed is complete by itself).
 */
export function createStreamHandler(): H["streamTestResults"] {
  return async (requests, ctx: Ctx) => {
    const projectId = ctx.project.id;
    let state: StreamState | undefined;
    let message = 0;
    let recordedCount = 0;
    let committedChunks = 0;
    let skippedChunks = 0;
    let evaluation: EvaluationRow | undefined;
    // read with the first chunk: an evaluation's declared scores never change after its creation
    let declarations: readonly ScoreDeclaration[] | undefined;
    for await (const chunk of requests) {
      message++;
      state = admit(state, chunk, message);
      const { first } = state;
      const at = where(chunk, message);
      const scope = requestIdScope(ctx, `StreamTestResults#${chunk.chunkIndex}`, {
        requestId: first.requestId,
        // a chunk digests as a RecordTestResults batch of the same results
        digest: requestDigest({ evaluationId: first.evaluationId, results: batchDigestInput(chunk.results) }),
        responseSchema: RecordTestResultsResponseSchema,
      });
      const batch = batchValues(chunk.results);
      try {
        const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
          const earlier = await requestIds.replay(tx, scope).catch((e: unknown) => {
            if (e instanceof AlreadyExistsError) {
              throw new InvalidArgumentError(
                "chunk_index",
                `chunk ${chunk.chunkIndex} of request_id ${first.requestId} was committed with other results: a resumed stream must send each chunk as it was`,
                {
                  reason: "CHUNK_CHANGED",
                  metadata: { requestId: first.requestId, chunkIndex: String(chunk.chunkIndex) },
                },
              );
            }
            throw e;
          });
          const before = await requireEvaluation(tx, projectId, first.evaluationId);
          // committed by an earlier stream: skipped, and the evaluation as it is now for the response
          const known = declarations ?? (await declarationsOf(tx, before.id));
          if (earlier !== undefined) return { skipped: true, after: before, declarations: known };
          const { rows, after } = await recordBatch(tx, audit, before, batch, known);
          // the chunk's own answer, as RecordTestResults would have given it
          const response = create(RecordTestResultsResponseSchema, {
            recordedCount: rows.length,
            evaluation: evaluationMessage(after, known),
          });
          await requestIds.remember(tx, scope, response, rows[0]?.createdAt);
          return { skipped: false, after, declarations: known };
        });
        evaluation = outcome.after;
        declarations = outcome.declarations;
        if (outcome.skipped) skippedChunks++;
        else {
          committedChunks++;
          recordedCount += batch.rows.length;
        }
      } catch (e) {
        throw e instanceof InvalidArgumentError ? located(e, at) : e;
      }
    }
    if (state === undefined || evaluation === undefined) {
      // unreachable: the kit hands the handler a first message (empty if the client sent none), which the
      // validator refuses (no results)
      throw new InvalidArgumentError("evaluation_id", "is required in the first message");
    }
    return {
      recordedCount,
      committedChunks,
      skippedChunks,
      evaluation: evaluationMessage(evaluation, declarations),
    };
  };
}

export function createResultStreamHandlers(_deps: HandlerDeps) {
  return { streamTestResults: createStreamHandler(), exportTestResults: createExportHandler() };
}
