// The sending side of a snapshot: the key/value data as of one commit, read through an LMDB
// read transaction that stays open until close(), handed out in chunks of bounded size. The
// store decides the snapshot's metadata; the transport moves the chunks.
import type { Database, Transaction } from 'lmdb'
import { assert } from '../base/index.ts'
import type { SnapshotMeta } from '../raft/index.ts'
import type { KvPair, SnapshotSource } from '../transport/transport.ts'

/**
 * LmdbSnapshotSource streams the pairs of a key/value database as one read transaction sees
 * them. Each chunk opens a cursor just past the previous chunk's last key, so nothing but the
 * chunk being built is held in memory, and the stream is consistent however slowly it is read.
 * While open, the read transaction keeps LMDB from reusing pages freed after it began (the
 * file may grow); close it promptly.
 */
export class LmdbSnapshotSource implements SnapshotSource {
  readonly meta: SnapshotMeta
  readonly extra: Uint8Array
  private readonly kvDb: Database<Uint8Array, Uint8Array>
  // Invariant: txn is undefined exactly when the source is closed.
  private txn: Transaction | undefined
  private readonly onClose: (s: LmdbSnapshotSource) => void
  private readonly decode: (key: Uint8Array, record: Uint8Array) => Uint8Array

  constructor(
    kvDb: Database<Uint8Array, Uint8Array>,
    txn: Transaction,
    meta: SnapshotMeta,
    extra: Uint8Array,
    onClose: (s: LmdbSnapshotSource) => void,
    /** decode turns a stored record into its value, throwing if the record is damaged: a
     * damaged value is never sent. */
    decode: (key: Uint8Array, record: Uint8Array) => Uint8Array,
  ) {
    this.decode = decode
    this.kvDb = kvDb
    this.txn = txn
    this.meta = meta
    this.extra = extra
    this.onClose = onClose
  }

  /** chunks yields the pairs in key order, each chunk holding at most chunkBytes of keys and
   * values (a single larger pair makes a chunk of its own). Keys and values are fresh copies. */
  async *chunks(chunkBytes: number): AsyncGenerator<readonly KvPair[]> {
    assert(chunkBytes > 0, 'chunks: chunkBytes must be positive')
    let after: Uint8Array | undefined
    for (;;) {
      const transaction = this.txn
      assert(transaction !== undefined, 'snapshot source read after close()')
      const chunk: KvPair[] = []
      let bytes = 0
      const range =
        after === undefined
          ? this.kvDb.getRange({ transaction })
          : this.kvDb.getRange({ transaction, start: after, exclusiveStart: true })
      for (const { key, value: record } of range) {
        const value = this.decode(key, record)
        const size = key.byteLength + value.byteLength
        if (chunk.length > 0 && bytes + size > chunkBytes) break
        chunk.push({ key: new Uint8Array(key), value: new Uint8Array(value) })
        bytes += size
      }
      const last = chunk.at(-1)
      if (last === undefined) return
      after = last.key
      yield chunk
    }
  }

  /** close ends the read transaction; later chunks() calls fail. Closing twice is harmless. */
  close(): void {
    if (this.txn === undefined) return
    this.txn.done()
    this.txn = undefined
    this.onClose(this)
  }
}
