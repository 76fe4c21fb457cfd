// The consistent-hash ring that decides which cache peer owns a key (groupcache's
// consistenthash, with a better spread). Every peer is placed at `replicas` points on a
// 32-bit circle; a key belongs to the first point at or after its hash. The points depend
// only on the peer names, so every node computes the same owner from the same peer list, and
// adding or removing one of N peers moves only about 1/N of the keys.
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'

/** REPLICAS_DEFAULT is the number of points per peer: enough that three peers each own
 * 33 % ± 3 % of the keys (ketama's choice). */
export const REPLICAS_DEFAULT = 160

/** fmix32 is murmur3's finalizer: it spreads crc32's output over the whole circle. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** keyHash is the position of a key on the circle. */
export function keyHash(key: string | Uint8Array): number {
  return fmix32(crc32(key))
}

/** HashRing maps keys to peers. It is immutable: a new peer list makes a new ring. */
export class HashRing {
  /** peers is the sorted, de-duplicated peer list. */
  readonly peers: readonly string[]
  private readonly points: Uint32Array
  private readonly owners: string[]

  constructor(peers: Iterable<string>, replicas = REPLICAS_DEFAULT) {
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new RangeError(`replicas must be a positive integer, not ${replicas}`)
    }
    this.peers = [...new Set(peers)].sort()
    const all: { point: number; peer: string }[] = []
    for (const peer of this.peers) {
      // A strong hash of "peer#i" places the points; it runs once per membership change.
      for (let i = 0; i < replicas; i++) {
        const digest = createHash('sha256').update(`${peer}#${i}`).digest()
        all.push({ point: digest.readUInt32BE(0), peer })
      }
    }
    // Ties (two peers on one point) are broken by name, so every node agrees.
    all.sort((a, b) => a.point - b.point || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
    this.points = Uint32Array.from(all.map((p) => p.point))
    this.owners = all.map((p) => p.peer)
  }

  /** size is the number of peers. */
  get size(): number {
    return this.peers.length
  }

  /** owner is the peer that owns key, or undefined when the ring is empty. */
  owner(key: string | Uint8Array): string | undefined {
    const n = this.points.length
    if (n === 0) return undefined
    const h = keyHash(key)
    // The first point >= h, wrapping to the start.
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.points[mid] as number) < h) lo = mid + 1
      else hi = mid
    }
    return this.owners[lo === n ? 0 : lo]
  }

  /** samePeers is true when other has exactly these peers. */
  samePeers(other: readonly string[]): boolean {
    const sorted = [...new Set(other)].sort()
    return sorted.length === this.peers.length && sorted.every((p, i) => p === this.peers[i])
  }
}
