import { RedisScript } from "../../redis/script.js";

/*
 * The ledger's scripts, one `.lua` file each beside this module (KEYS/ARGV layout at the top of
 * each). Every multi-key change is one script over keys sharing one hash tag, so it is atomic on
 * a single Redis and on Redis Cluster alike.
 */

const load = (file: string) => RedisScript.fromFile(new URL(`./${file}`, import.meta.url));

export const addRowsScript = load("add-rows.lua");
export const transitionScript = load("transition.lua");
export const reserveScript = load("reserve.lua");
export const settleScript = load("settle.lua");
export const releaseScript = load("release.lua");
export const setBudgetScript = load("set-budget.lua");
export const indexRowsScript = load("index-rows.lua");
export const leaseScript = load("lease.lua");
export const countRepairsScript = load("count-repairs.lua");
export const wakeScript = load("wake.lua");
export const feedScript = load("feed.lua");
export const resultForgetScript = load("result-forget.lua");
export const freezeScript = load("freeze.lua");
export const markBatchScript = load("mark-batch.lua");
export const forgetReservedEndedScript = load("forget-reserved-ended.lua");
