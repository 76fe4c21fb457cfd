// Tests for log records that leave their data's tail in the value file (log-record.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Entry } from '../raft/index.ts'
import {
  decodeLogRecord,
  decodeLogRecordTerm,
  encodeLogRecord,
  isTailRef,
  TAIL_REF_HEADER_BYTES,
  tailRefRecord,
} from './log-record.ts'

const head = new TextEncoder().encode('put key ')
const value = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff)
const entry: Entry = { index: 42, term: 3, type: 'normal', data: concat(head, value) }

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}

// A value file of one value at offset 1000.
function fileWith(bytes: Uint8Array): (offset: number, length: number) => Uint8Array | undefined {
  return (offset, length) => (offset === 1000 && length === bytes.byteLength ? bytes : undefined)
}

describe('log records with a tail in the value file', () => {
  it('hold the head and a reference, and read back as the entry', () => {
    const stored = tailRefRecord(encodeLogRecord(entry), value, 1000)
    assert(stored !== undefined)
    assert.equal(stored.byteLength, TAIL_REF_HEADER_BYTES + head.byteLength)
    assert.equal(isTailRef(stored), true)
    assert.equal(isTailRef(encodeLogRecord(entry)), false)
    assert.deepEqual(decodeLogRecordTerm(stored, 42), { ok: true, value: 3 })
    assert.deepEqual(decodeLogRecord(stored, 42, fileWith(value)), { ok: true, value: entry })
    // The whole data in the file, and none of it.
    const whole = tailRefRecord(encodeLogRecord(entry), entry.data, 1000)
    assert(whole !== undefined)
    assert.deepEqual(decodeLogRecord(whole, 42, fileWith(entry.data)), { ok: true, value: entry })
    const none = tailRefRecord(encodeLogRecord(entry), new Uint8Array(0), 0)
    assert(none !== undefined)
    assert.deepEqual(
      decodeLogRecord(none, 42, () => new Uint8Array(0)),
      {
        ok: true,
        value: entry,
      },
    )
  })

  it('are not made for other bytes, a longer tail or a configuration entry', () => {
    const record = encodeLogRecord(entry)
    const other = value.map((b) => b ^ 1)
    assert.equal(tailRefRecord(record, other, 1000), undefined)
    assert.equal(tailRefRecord(record, concat(new Uint8Array(9), entry.data), 1000), undefined)
    const conf = encodeLogRecord({ ...entry, type: 'conf' })
    assert.equal(tailRefRecord(conf, value, 1000), undefined)
  })

  it('read as damaged when the tail is missing, short or other bytes, or the record is', () => {
    const stored = tailRefRecord(encodeLogRecord(entry), value, 1000)
    assert(stored !== undefined)
    const problem = (r: ReturnType<typeof decodeLogRecord>): string => (r.ok ? '' : r.problem)
    assert.match(problem(decodeLogRecord(stored, 42)), /4096 bytes at 1000 .* are missing/)
    assert.match(problem(decodeLogRecord(stored, 42, fileWith(value.subarray(1)))), /are missing/)
    const bad = Uint8Array.from(value)
    bad[4000] = (bad[4000] ?? 0) ^ 0x10
    assert.match(problem(decodeLogRecord(stored, 42, fileWith(bad))), /fail their checksum/)
    // The reference's own bytes are under the record's checksum.
    const garbled = Uint8Array.from(stored)
    garbled[25] = (garbled[25] ?? 0) ^ 0x01
    assert.match(problem(decodeLogRecord(garbled, 42, fileWith(value))), /fails its checksum/)
    assert.match(problem(decodeLogRecord(stored.subarray(0, 30), 42)), /too short/)
  })
})
