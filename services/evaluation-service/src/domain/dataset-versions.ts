import { InvalidArgumentError } from "@autoforge/server";
import { limits } from "./limits.js";

/**
 * How a new version is built from its base: no I/O. Items named by the request are compared with the base
 * version's items of the same ids (by digest); everything else of the base is copied as it is.
 */
export interface PlannedItem {
  readonly itemId: string;
  readonly digest: string;
}

export interface VersionPlan {
  /** Items whose content rows and membership rows this version writes (added and changed ones). */
  readonly write: readonly number[];
  /**
   * Ids of the base the copy leaves out besides the changed ones (which the copy skips because the new version
   * already holds them): the removed ones.
   */
  readonly excludeFromCopy: readonly string[];
  readonly itemCount: number;
  readonly addedCount: number;
  readonly changedCount: number;
  readonly removedCount: number;
}

/**
 * `items` carry their final ids (server-assigned ones already filled in), `base` the digests of those of the
 * request's ids (items and removed ones) that the base version holds, `baseCount` its size (0 and an empty
 * map from scratch). Throws INVALID_ARGUMENT naming `removed_item_ids[i]` for an id the base lacks, and
 * `items` when the version would exceed the item limit.
 */
export function planVersion(input: {
  items: readonly PlannedItem[];
  removedItemIds: readonly string[];
  base: ReadonlyMap<string, string>;
  baseCount: number;
  baseVersion: number;
}): VersionPlan {
  const write: number[] = [];
  const exclude: string[] = [];
  let added = 0;
  let changed = 0;
  input.items.forEach((item, i) => {
    const before = input.base.get(item.itemId);
    if (before === undefined) {
      added++;
      write.push(i);
    } else if (before !== item.digest) {
      changed++;
      write.push(i);
    }
  });
  const missing = input.removedItemIds.flatMap((id, i) =>
    input.base.has(id)
      ? []
      : [{ field: `removed_item_ids[${i}]`, description: `is not an item of version ${input.baseVersion}` }],
  );
  const [first, ...rest] = missing;
  if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
  exclude.push(...input.removedItemIds);
  const itemCount = input.baseCount + added - input.removedItemIds.length;
  if (itemCount > limits.datasetVersionItemsMax) {
    throw new InvalidArgumentError(
      "items",
      `the version would hold ${itemCount} items: at most ${limits.datasetVersionItemsMax}`,
    );
  }
  return {
    write,
    excludeFromCopy: exclude,
    itemCount,
    addedCount: added,
    changedCount: changed,
    removedCount: input.removedItemIds.length,
  };
}
