// oncekv's client library: `import { OnceKV } from 'oncekv'`. It runs on Node.js 20+ and in
// browsers: it uses fetch and imports nothing from Node.js.
export { OnceKV } from './client.ts'
export type {
  CallOptions,
  FetchLike,
  FetchLikeInit,
  FetchLikeResponse,
  ManyOptions,
  Nodes,
  OnceKVOptions,
  PutResult,
  Value,
} from './client.ts'
export {
  InvalidKeyError,
  KeyConflictError,
  OnceKVError,
  TimeoutError,
  UnavailableError,
  ValueTooLargeError,
} from './errors.ts'
export type { ErrorCode, ErrorDetails } from './errors.ts'
export { KEY_BYTES_MAX } from './keys.ts'
export type { NodeInfo } from './nodes.ts'
