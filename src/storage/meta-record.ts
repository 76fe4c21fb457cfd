// The on-disk form of the store's small metadata records (hard state, snapshot metadata,
// applied index, configuration, address book, format): MessagePack behind a CRC32, plus a
// checked parser for each shape. Pure byte work; where the records live is the store's.
import { crc32 } from 'node:zlib'
import { pack, unpack } from 'msgpackr'
import type { ConfState, HardState, SnapshotMeta } from '../raft/index.ts'
import type { Decoded } from './log-record.ts'

/** encodeMetaRecord turns a plain value into record bytes: a CRC32, then MessagePack. */
export function encodeMetaRecord(value: unknown): Uint8Array {
  const body = pack(value)
  const out = new Uint8Array(4 + body.byteLength)
  out.set(body, 4)
  new DataView(out.buffer).setUint32(0, crc32(body), true)
  return out
}

/** decodeMetaRecord checks a record's CRC and returns the value it holds, unvalidated. */
export function decodeMetaRecord(bytes: Uint8Array): Decoded<unknown> {
  if (bytes.byteLength < 5) return { ok: false, problem: 'too short' }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const body = bytes.subarray(4)
  if (view.getUint32(0, true) !== crc32(body)) return { ok: false, problem: 'bad checksum' }
  try {
    return { ok: true, value: unpack(body) as unknown }
  } catch {
    return { ok: false, problem: 'not MessagePack' }
  }
}

/** parseIndex checks that v is a log index (a non-negative safe integer). */
export function parseIndex(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined
}

/** parseHardState checks that v is a HardState and returns a copy. */
export function parseHardState(v: unknown): HardState | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  const term = parseIndex(o.term)
  const commit = parseIndex(o.commit)
  if (term === undefined || commit === undefined || typeof o.vote !== 'string') return undefined
  return { term, vote: o.vote, commit }
}

/** parseConfState checks that v is a ConfState and returns a copy. */
export function parseConfState(v: unknown): ConfState | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  const voters = parseIds(o.voters)
  const learners = parseIds(o.learners)
  if (voters === undefined || learners === undefined) return undefined
  return { voters, learners }
}

/** parseSnapshotMeta checks that v is a SnapshotMeta and returns a copy. */
export function parseSnapshotMeta(v: unknown): SnapshotMeta | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  const index = parseIndex(o.index)
  const term = parseIndex(o.term)
  const conf = parseConfState(o.conf)
  if (index === undefined || term === undefined || conf === undefined) return undefined
  return { index, term, conf }
}

/** Identity is who a data directory belongs to: the member id it was started with and, while
 * it waits to be added to a cluster, the members it joins through. */
export interface Identity {
  readonly id: string
  /** joinVia lists HTTP URLs; empty once the member has state of its own. */
  readonly joinVia: readonly string[]
}

/** parseIdentity checks that v is an Identity and returns a copy. */
export function parseIdentity(v: unknown): Identity | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.id !== 'string' || o.id === '' || !Array.isArray(o.joinVia)) return undefined
  if (!o.joinVia.every((u): u is string => typeof u === 'string')) return undefined
  return { id: o.id, joinVia: [...o.joinVia] }
}

/** plainConf copies a ConfState into a plain object with only the known fields. */
export function plainConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] }
}

/** plainSnapshotMeta copies a SnapshotMeta into a plain object with only the known fields. */
export function plainSnapshotMeta(s: SnapshotMeta): SnapshotMeta {
  return { index: s.index, term: s.term, conf: plainConf(s.conf) }
}

/** plainHardState copies a HardState into a plain object with only the known fields. */
export function plainHardState(hs: HardState): HardState {
  return { term: hs.term, vote: hs.vote, commit: hs.commit }
}

function parseIds(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined
  const out: string[] = []
  for (const id of v) {
    if (typeof id !== 'string' || id === '') return undefined
    out.push(id)
  }
  return out
}
