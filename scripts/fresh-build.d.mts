// Types of fresh-build.mjs for its TypeScript callers (test/global-setup.ts).
export declare const STAMP_FILE: string;
export declare const LOCK_FILE: string;
export declare class BuildError extends Error {}
export type SourceState = Record<string, string>;
export interface Staleness {
  all: boolean;
  changed: string[];
  removed: boolean;
}
export interface Rebuilt {
  files: number;
  pruned: number;
  summary: string;
}
export declare function sourceState(root: string): SourceState;
export declare function staleness(root: string, state?: SourceState): Staleness | undefined;
export declare function writeStamp(root: string, state: SourceState, builtBy: string): void;
export declare function removeStamp(root: string): void;
export declare function pruneOrphans(root: string): number;
export declare function acquireBuildLock(root: string): Promise<() => void>;
export declare function loadTypeScript(root: string): unknown;
export declare function ensureFreshBuild(root: string): Promise<Rebuilt | undefined>;
