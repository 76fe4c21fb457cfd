// The simulator's write-once key/value state machine and its proposal encoding. A key is set
// once: a put of the same bytes again is a success ('exists'), of other bytes a 'conflict'.
// The machine also holds the applied index and the configuration as of it, which the
// replica makes durable together with the data (SimDisk), so a restart neither loses nor
// double-applies. Snapshot data is the serialized key/value map; index and configuration
// travel in the snapshot's metadata.
import type { ConfState } from '../../src/raft/index.ts'

/** PutResult is what applying a put answers. */
export type PutResult = 'created' | 'exists' | 'conflict'

/** PutCommand is the payload of a normal entry proposed by a simulated client. */
export interface PutCommand {
  readonly client: number
  readonly reqId: number
  readonly key: string
  readonly value: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** encodePut turns a put into an entry's data. */
export function encodePut(cmd: PutCommand): Uint8Array {
  return encoder.encode(JSON.stringify([cmd.client, cmd.reqId, cmd.key, cmd.value]))
}

// Replicas share entry objects in-process, so each entry's payload is decoded once.
const decoded = new WeakMap<Uint8Array, PutCommand>()

/** decodePut reads an entry's data; it throws on anything else (a bug in the simulator). */
export function decodePut(data: Uint8Array): PutCommand {
  let cmd = decoded.get(data)
  if (cmd === undefined) {
    cmd = parsePut(data)
    decoded.set(data, cmd)
  }
  return cmd
}

function parsePut(data: Uint8Array): PutCommand {
  const v: unknown = JSON.parse(decoder.decode(data))
  if (!Array.isArray(v) || v.length !== 4) throw new TypeError('put: not a 4-tuple')
  const [client, reqId, key, value] = v as unknown[]
  if (typeof client !== 'number' || typeof reqId !== 'number') throw new TypeError('put: ids')
  if (typeof key !== 'string' || typeof value !== 'string') throw new TypeError('put: key/value')
  return { client, reqId, key, value }
}

/** encodeKv serializes a key/value map (snapshot data) in the map's insertion order, which
 * is the order the keys were created in: the same on every replica. */
export function encodeKv(kv: ReadonlyMap<string, string>): Uint8Array {
  return encoder.encode(JSON.stringify([...kv.entries()]))
}

/** decodeKv reads snapshot data back into a map. */
export function decodeKv(data: Uint8Array): Map<string, string> {
  if (data.byteLength === 0) return new Map()
  const v: unknown = JSON.parse(decoder.decode(data))
  if (!Array.isArray(v)) throw new TypeError('snapshot data: not an array')
  const kv = new Map<string, string>()
  for (const p of v as unknown[]) {
    if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'string') {
      throw new TypeError('snapshot data: bad pair')
    }
    kv.set(p[0], p[1])
  }
  return kv
}

/** KvStateMachine is one replica's in-memory write-once map plus its applied index and conf. */
export class KvStateMachine {
  // Invariant: applied only grows within one incarnation, except by a snapshot install.
  constructor(
    readonly kv: Map<string, string>,
    public applied: number,
    public conf: ConfState,
  ) {}

  /** put stores value under key unless the key holds anything already. */
  put(key: string, value: string): PutResult {
    const old = this.kv.get(key)
    if (old === undefined) {
      this.kv.set(key, value)
      return 'created'
    }
    return old === value ? 'exists' : 'conflict'
  }

  /** get reads a key. */
  get(key: string): string | undefined {
    return this.kv.get(key)
  }
}
