// A small seeded pseudo-random generator (sfc32 seeded through splitmix32). Everything that
// needs chance in the Raft core or the simulator takes an Rng, so one seed replays one run.

/** Rng is a deterministic source of pseudo-random numbers. */
export interface Rng {
  /** next returns a float in [0, 1). */
  next(): number
  /** int returns an integer in [0, n). */
  int(n: number): number
}

/** SeededRng is the sfc32 generator; the same seed gives the same sequence on every machine. */
export class SeededRng implements Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(readonly seed: number) {
    let s = seed >>> 0
    const mix = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = mix()
    this.b = mix()
    this.c = mix()
    this.d = mix()
    for (let i = 0; i < 12; i++) this.u32()
  }

  /** u32 returns the next 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  next(): number {
    return this.u32() / 4294967296
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** chance returns true with probability p. */
  chance(p: number): boolean {
    return this.next() < p
  }

  /** range returns an integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  /** pick returns one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)]
    if (item === undefined) throw new RangeError('pick from an empty array')
    return item
  }

  /** child returns an independent generator whose seed is drawn from this one. */
  child(): SeededRng {
    return new SeededRng(this.u32())
  }
}
