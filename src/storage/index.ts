// The storage layer's public surface: the member's durable store (LmdbStore), its error, and
// the member address book it keeps. Other folders import from here, never from inner files.
export {
  LmdbStore,
  KEY_BYTES_MAX,
  FORMAT_VERSION,
  MIN_FREE_BYTES_DEFAULT,
  VERIFY_TAIL_ENTRIES,
} from './lmdb-store.ts'
export type { ApplyTxn, LmdbStoreOptions, PutOutcome, ReadyWrite } from './lmdb-store.ts'
export {
  DiskFailedError,
  DiskUnavailableError,
  diskErrno,
  StoreCorruptError,
  StoreIdentityError,
  ValueCorruptError,
} from './errors.ts'
export type { DiskProblem } from './errors.ts'
export { encodeMembers, decodeMembers } from './members.ts'
export type { MemberAddress, Members } from './members.ts'
export type { Identity } from './meta-record.ts'
