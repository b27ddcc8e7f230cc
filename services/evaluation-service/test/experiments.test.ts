import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
} from "@autoforge/contracts/google/rpc/error_details";
import type { ConnectError } from "@connectrpc/connect";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { deleteEvaluationsOfPrompt } from "../src/db/repository.js";
import {
  Code,
  expectCode,
  must,
  openTestDatabase,
  type ResultInput,
  result,
  startEvaluationService,
  stubPromptClient,
  tableCounts,
} from "./helpers.js";

/**
 * Experiments: evaluations over a dataset version with repeated trials, through the public API (and the
 * database's own rules by raw SQL).
 */

const items = ["a", "b", "c"];

/**
 * evaluation-service on a test database with one prompt in alice's project and a dataset `qa` there whose
 * version 1 holds the items a, b, c.
 */
async function start() {
  const { db } = await openTestDatabase();
  const promptId = uuidv7();
  const svc = await startEvaluationService(
    db,
    stubPromptClient(new Map([[promptId, { project: "user:alice" }]])),
  );
  const alice = await svc.clients.evaluations("alice");
  const bob = await svc.clients.evaluations("bob");
  const aliceDatasets = await svc.clients.datasets("alice");
  const dataset = must((await aliceDatasets.createDataset({ name: "qa" })).dataset);
  await aliceDatasets.createDatasetVersion({
    datasetId: dataset.id,
    items: items.map((itemId) => ({ itemId, input: { case: "textInput", value: `q ${itemId}` } })),
  });
  /** A RUNNING experiment over version 1 with `trials` trials per item. */
  const experiment = async (trials = 2) => {
    const e = must(
      (
        await alice.createEvaluation({
          promptId,
          provider: "p",
          model: "m",
          datasetId: dataset.id,
          datasetVersion: 1,
          trialsPerItem: trials,
        })
      ).evaluation,
    );
    await alice.startEvaluation({ id: e.id });
    return e.id;
  };
  const adHoc = async () => {
    const e = must((await alice.createEvaluation({ promptId, provider: "p", model: "m" })).evaluation);
    await alice.startEvaluation({ id: e.id });
    return e.id;
  };
  return { db, svc, alice, bob, aliceDatasets, promptId, datasetId: dataset.id, experiment, adHoc };
}

/** Result i for (item, trial). */
function trialResult(
  i: number,
  datasetItemId: string,
  trial: number,
): ResultInput & {
  datasetItemId: string;
  trial: number;
} {
  return { ...result(i), datasetItemId, trial };
}

function fields(e: ConnectError): string[] {
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

function reason(e: ConnectError): string | undefined {
  return e.findDetails(ErrorInfoSchema)[0]?.reason;
}

describe("CreateEvaluation over a dataset version", () => {
  it("echoes the dataset, its version and trials_per_item (default 1); ad-hoc evaluations leave them unset", async () => {
    const t = await start();
    const e = must(
      (
        await t.alice.createEvaluation({
          promptId: t.promptId,
          provider: "p",
          model: "m",
          datasetId: t.datasetId,
          datasetVersion: 1,
        })
      ).evaluation,
    );
    expect(e).toMatchObject({ datasetId: t.datasetId, datasetVersion: 1, trialsPerItem: 1 });
    expect(must((await t.alice.getEvaluation({ id: e.id })).evaluation)).toMatchObject({
      datasetId: t.datasetId,
      datasetVersion: 1,
      trialsPerItem: 1,
    });
    const adHoc = must(
      (await t.alice.createEvaluation({ promptId: t.promptId, provider: "p", model: "m" })).evaluation,
    );
    expect(adHoc).toMatchObject({ datasetId: "", datasetVersion: 0, trialsPerItem: 0 });
  });

  it("another project's dataset, or an unknown version, is NOT_FOUND and nothing is written", async () => {
    const t = await start();
    const bobDatasets = await t.svc.clients.datasets("bob");
    const bobs = must((await bobDatasets.createDataset({ name: "qa" })).dataset);
    await bobDatasets.createDatasetVersion({
      datasetId: bobs.id,
      items: [{ itemId: "a", input: { case: "textInput", value: "q" } }],
    });
    const before = await tableCounts(t.db);
    const base = { promptId: t.promptId, provider: "p", model: "m" };
    const foreign = await expectCode(
      t.alice.createEvaluation({ ...base, datasetId: bobs.id, datasetVersion: 1 }),
      Code.NotFound,
    );
    expect(reason(foreign)).toBe("DATASET_NOT_FOUND");
    const version = await expectCode(
      t.alice.createEvaluation({ ...base, datasetId: t.datasetId, datasetVersion: 2 }),
      Code.NotFound,
    );
    expect(reason(version)).toBe("DATASET_VERSION_NOT_FOUND");
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it("refuses experiment fields without a dataset, a dataset without a version, and trials beyond 100", async () => {
    const t = await start();
    const base = { promptId: t.promptId, provider: "p", model: "m" };
    const cases: [Parameters<typeof t.alice.createEvaluation>[0], string][] = [
      [{ ...base, datasetVersion: 1 }, "dataset_version"],
      [{ ...base, trialsPerItem: 2 }, "trials_per_item"],
      [{ ...base, datasetId: t.datasetId }, "dataset_version"],
      [{ ...base, datasetId: t.datasetId, datasetVersion: 1, trialsPerItem: 101 }, "trials_per_item"],
      [{ ...base, datasetId: "not-a-uuid", datasetVersion: 1 }, "dataset_id"],
    ];
    for (const [req, field] of cases) {
      const e = await expectCode(t.alice.createEvaluation(req), Code.InvalidArgument);
      expect(fields(e)).toEqual([field]);
    }
  });
});

describe("RecordTestResults on an experiment", () => {
  it("records every (item, trial) across requests, lists them, and completes", async () => {
    const t = await start();
    const id = await t.experiment(2);
    await t.alice.recordTestResults({
      evaluationId: id,
      results: [trialResult(0, "a", 1), trialResult(1, "a", 2), trialResult(2, "b", 1)],
    });
    const second = await t.alice.recordTestResults({
      evaluationId: id,
      results: [trialResult(3, "b", 2), trialResult(4, "c", 2), trialResult(5, "c", 1)],
    });
    expect(second.evaluation).toMatchObject({ testCount: 6, trialsPerItem: 2 });
    const listed = (await t.alice.listTestResults({ evaluationId: id })).testResults;
    expect(listed.map((r) => [r.datasetItemId, r.trial])).toEqual([
      ["a", 1],
      ["a", 2],
      ["b", 1],
      ["b", 2],
      ["c", 2],
      ["c", 1],
    ]);
    const done = must((await t.alice.completeEvaluation({ id })).evaluation);
    expect(done.status).toBe(EvaluationStatus.COMPLETED);
    expect(done.overallScore).toBeCloseTo((0 + 0.1 + 0.2 + 0.3 + 0.4 + 0.5) / 6);
  });

  it("refuses bad items and trials with INVALID_ARGUMENT naming the field, writing nothing", async () => {
    const t = await start();
    const id = await t.experiment(2);
    await t.alice.recordTestResults({ evaluationId: id, results: [trialResult(0, "a", 1)] });
    const before = await tableCounts(t.db);
    const cases: [ReturnType<typeof trialResult>[], string[], RegExp][] = [
      [[trialResult(1, "b", 1), trialResult(2, "zzz", 1)], ["results[1].dataset_item_id"], /not an item/],
      [[trialResult(1, "b", 0)], ["results[0].trial"], /required with dataset_item_id/],
      [[trialResult(1, "b", 1), trialResult(2, "b", 3)], ["results[1].trial"], /must be 1 to 2/],
      [
        [trialResult(1, "b", 1), trialResult(2, "c", 1), trialResult(3, "b", 1)],
        ["results[2].trial"],
        /results\[0\]/,
      ],
      [
        [trialResult(1, "b", 1), { ...result(2), datasetItemId: "", trial: 0 }],
        ["results[1].dataset_item_id", "results[1].trial"],
        /required/,
      ],
      [
        [{ ...result(1), datasetItemId: "", trial: 1 }],
        ["results[0].dataset_item_id"],
        /required with trial/,
      ],
    ];
    for (const [results, expected, message] of cases) {
      const e = await expectCode(
        t.alice.recordTestResults({ evaluationId: id, results }),
        Code.InvalidArgument,
        message,
      );
      expect(fields(e)).toEqual(expected);
    }
    expect(await tableCounts(t.db)).toEqual(before);
    expect(must((await t.alice.getEvaluation({ id })).evaluation).testCount).toBe(1);
  });

  it("a pair recorded by an earlier request is ALREADY_EXISTS, but a retried request_id gets its first answer", async () => {
    const t = await start();
    const id = await t.experiment(2);
    const first = await t.alice.recordTestResults({
      evaluationId: id,
      results: [trialResult(0, "a", 1), trialResult(1, "b", 1)],
      requestId: "batch-1",
    });
    const retried = await t.alice.recordTestResults({
      evaluationId: id,
      results: [trialResult(0, "a", 1), trialResult(1, "b", 1)],
      requestId: "batch-1",
    });
    expect(retried).toEqual(first);
    const before = await tableCounts(t.db);
    const e = await expectCode(
      t.alice.recordTestResults({
        evaluationId: id,
        results: [trialResult(2, "c", 1), trialResult(3, "b", 1)],
      }),
      Code.AlreadyExists,
      /results\[1\]: item b trial 1 already has a result/,
    );
    expect(reason(e)).toBe("TRIAL_ALREADY_RECORDED");
    expect(e.findDetails(ErrorInfoSchema)[0]?.metadata).toMatchObject({ datasetItemId: "b", trial: "1" });
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it("an ad-hoc evaluation refuses item and trial fields, and records as before without them", async () => {
    const t = await start();
    const id = await t.adHoc();
    const before = await tableCounts(t.db);
    const e = await expectCode(
      t.alice.recordTestResults({ evaluationId: id, results: [result(0), trialResult(1, "a", 1)] }),
      Code.InvalidArgument,
      /runs over no dataset/,
    );
    expect(fields(e)).toEqual(["results[1].dataset_item_id"]);
    expect(await tableCounts(t.db)).toEqual(before);
    const ok = await t.alice.recordTestResults({ evaluationId: id, results: [result(0), result(1)] });
    expect(ok.recordedCount).toBe(2);
    const listed = (await t.alice.listTestResults({ evaluationId: id })).testResults;
    expect(listed.map((r) => [r.datasetItemId, r.trial])).toEqual([
      ["", 0],
      ["", 0],
    ]);
    expect(must((await t.alice.completeEvaluation({ id })).evaluation).status).toBe(
      EvaluationStatus.COMPLETED,
    );
  });
});

describe("CompleteEvaluation of an experiment", () => {
  it("refuses while pairs are missing, saying how many and which first; allow_partial completes anyway", async () => {
    const t = await start();
    const id = await t.experiment(3);
    await t.alice.recordTestResults({
      evaluationId: id,
      results: [
        trialResult(0, "a", 1),
        trialResult(1, "a", 2),
        trialResult(2, "a", 3),
        trialResult(3, "b", 2),
      ],
    });
    const before = await tableCounts(t.db);
    const e = await expectCode(t.alice.completeEvaluation({ id }), Code.FailedPrecondition, /missing 5/);
    expect(reason(e)).toBe("EXPERIMENT_INCOMPLETE");
    expect(e.findDetails(ErrorInfoSchema)[0]?.metadata).toMatchObject({ evaluation: id, missing: "5" });
    expect(e.findDetails(PreconditionFailureSchema)[0]?.violations.map((v) => [v.type, v.subject])).toEqual([
      ["MISSING_RESULT", "b/1"],
      ["MISSING_RESULT", "b/3"],
      ["MISSING_RESULT", "c/1"],
      ["MISSING_RESULT", "c/2"],
      ["MISSING_RESULT", "c/3"],
    ]);
    expect(await tableCounts(t.db)).toEqual(before);
    expect(must((await t.alice.getEvaluation({ id })).evaluation).status).toBe(EvaluationStatus.RUNNING);

    const done = must((await t.alice.completeEvaluation({ id, allowPartial: true })).evaluation);
    expect(done).toMatchObject({ status: EvaluationStatus.COMPLETED, testCount: 4 });
  });

  it("counts what is missing of 100,000 items x 10 trials in SQL, listing the first pairs", async () => {
    const t = await start();
    const n = 100_000;
    const big = must((await t.aliceDatasets.createDataset({ name: "big" })).dataset);
    // the version written straight into the tables (as CreateDatasetVersion would, uncommitted then committed):
    // 100,000 items through the API would take a hundred requests
    await t.db.write(async (tx) => {
      await tx.run(
        `INSERT INTO dataset_versions (dataset_id, version, item_count, added_count, changed_count, removed_count, creator_id, created_at)
         VALUES ('${big.id}', 1, ${n}, ${n}, 0, 0, 'alice', 1)`,
      );
      await tx.run(
        `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ${n})
         INSERT INTO dataset_items (dataset_id, item_id, digest, input_kind, input, created_at)
         SELECT '${big.id}', printf('item-%06d', i), printf('%064x', i), 'text', 'q', 1 FROM k`,
      );
      await tx.run(
        `INSERT INTO dataset_version_items (dataset_id, version, item_id, digest)
         SELECT dataset_id, 1, item_id, digest FROM dataset_items WHERE dataset_id = '${big.id}'`,
      );
      await tx.run(
        `UPDATE dataset_versions SET committed = 1 WHERE dataset_id = '${big.id}' AND version = 1`,
      );
      await tx.run(`UPDATE datasets SET latest_version = 1, latest_item_count = ${n} WHERE id = '${big.id}'`);
    });
    const e = must(
      (
        await t.alice.createEvaluation({
          promptId: t.promptId,
          provider: "p",
          model: "m",
          datasetId: big.id,
          datasetVersion: 1,
          trialsPerItem: 10,
        })
      ).evaluation,
    );
    await t.alice.startEvaluation({ id: e.id });
    await t.alice.recordTestResults({
      evaluationId: e.id,
      results: Array.from({ length: 1000 }, (_, i) =>
        trialResult(i, `item-${String(Math.floor(i / 10)).padStart(6, "0")}`, (i % 10) + 1),
      ),
    });
    const refused = await expectCode(t.alice.completeEvaluation({ id: e.id }), Code.FailedPrecondition);
    expect(refused.findDetails(ErrorInfoSchema)[0]?.metadata).toMatchObject({
      missing: String(n * 10 - 1000),
    });
    // items 0..99 have every trial: the first missing pairs are item 100's
    expect(refused.findDetails(PreconditionFailureSchema)[0]?.violations.map((v) => v.subject)).toEqual(
      Array.from({ length: 10 }, (_, i) => `item-000100/${i + 1}`),
    );
  }, 60_000);

  it("still refuses an experiment without any result, even with allow_partial", async () => {
    const t = await start();
    const id = await t.experiment(1);
    const e = await expectCode(
      t.alice.completeEvaluation({ id, allowPartial: true }),
      Code.FailedPrecondition,
    );
    expect(reason(e)).toBe("NO_TEST_RESULTS");
  });
});

describe("the database's own rules for experiments", () => {
  it("refuses by raw SQL what the handlers refuse: unknown item, trial out of range, a repeated pair, ad-hoc items", async () => {
    const t = await start();
    const id = await t.experiment(2);
    const adHocId = await t.adHoc();
    await t.alice.recordTestResults({ evaluationId: id, results: [trialResult(0, "a", 1)] });
    const insert = (evaluationId: string, item: string | null, trial: number | null) =>
      t.db.client.execute({
        sql: `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at, dataset_item_id, trial)
              VALUES (?, ?, 'raw', 1, 1.0, 0, 1, ?, ?)`,
        args: [uuidv7(), evaluationId, item, trial],
      });
    await expect(insert(id, "zzz", 1)).rejects.toThrow(/not an item of the evaluation's dataset version/);
    await expect(insert(id, null, 1)).rejects.toThrow(/not an item of the evaluation's dataset version/);
    await expect(insert(id, null, null)).rejects.toThrow(/test_results: /);
    await expect(insert(id, "b", 3)).rejects.toThrow(/trial must be 1/);
    await expect(insert(id, "b", 0)).rejects.toThrow(/trial must be 1/);
    await expect(insert(id, "a", 1)).rejects.toThrow(/UNIQUE/);
    await expect(insert(adHocId, "a", 1)).rejects.toThrow(/only for an experiment/);
    await insert(id, "b", 2);
    await insert(adHocId, null, null);
    expect(must((await t.alice.getEvaluation({ id })).evaluation).testCount).toBe(2);
  });

  it("refuses by raw SQL an evaluation over another project's dataset, partial experiment columns, and changing them", async () => {
    const t = await start();
    const id = await t.experiment(2);
    await expect(
      t.db.client.execute({
        sql: `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, created_at,
                updated_at, dataset_id, dataset_version, trials_per_item)
              SELECT ?, 'user:bob', owner_id, prompt_id, prompt_version, provider, model, created_at, updated_at,
                dataset_id, dataset_version, trials_per_item FROM evaluations WHERE id = ?`,
        args: [uuidv7(), id],
      }),
    ).rejects.toThrow(/does not exist in the evaluation's project/);
    await expect(
      t.db.client.execute({
        sql: `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, created_at,
                updated_at, dataset_id, dataset_version, trials_per_item)
              SELECT ?, project_id, owner_id, prompt_id, prompt_version, provider, model, created_at, updated_at,
                dataset_id, dataset_version, NULL FROM evaluations WHERE id = ?`,
        args: [uuidv7(), id],
      }),
    ).rejects.toThrow(/all set or all NULL/);
    await expect(
      t.db.client.execute({ sql: "UPDATE evaluations SET trials_per_item = 5 WHERE id = ?", args: [id] }),
    ).rejects.toThrow(/cannot change/);
  });

  it("the PURGED cascade deletes an experiment and its results, and leaves the dataset and its version", async () => {
    const t = await start();
    const id = await t.experiment(2);
    await t.alice.recordTestResults({
      evaluationId: id,
      results: [trialResult(0, "a", 1), trialResult(1, "b", 2)],
    });
    const count = async (sql: string) => Number((await t.db.client.execute(sql)).rows[0]?.n);
    // what the consumer's PURGED case runs, in a write of its own
    await t.db.write((tx) => deleteEvaluationsOfPrompt(tx, "user:alice", t.promptId));
    await expectCode(t.alice.getEvaluation({ id }), Code.NotFound);
    expect(await count("SELECT count(*) AS n FROM test_results")).toBe(0);
    expect(await count("SELECT count(*) AS n FROM dataset_version_items")).toBe(items.length);
    const listed = await t.aliceDatasets.listDatasetItems({ datasetId: t.datasetId, version: 1 });
    expect(listed.items.map((i) => i.itemId)).toEqual(items);
    // and a new experiment over the version works
    expect(await t.experiment(1)).toBeTypeOf("string");
  });
});
