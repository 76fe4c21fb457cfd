// The Raft consensus core's public surface. Everything here is pure: no I/O, no timers.
export * from './types.ts'
export * from './storage.ts'
export { Raft } from './raft.ts'
export type {
  RaftConfig,
  Ready,
  ProposeResult,
  SoftState,
  Status,
  ProgressStatus,
  TestOnlyBugs,
} from './raft.ts'
export type { ProgressState } from './progress.ts'
export { committedIndex, voteResult, majority } from './quorum.ts'
