// The chaos checker on hand-made histories: each kind of violation is found and names its
// operations, and valid histories (late indeterminate puts, concurrent reads, identical
// re-puts, races) pass. A seeded random test builds valid histories from a sequential
// write-once register, checks that none is reported, then breaks one and checks that it is.
// Replay: CHECKER_SEED=<seed> node --import tsx --test test/chaos/register-checker.test.ts
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/base/index.ts'
import type { FinalData, Op, ReadOp, WriteOp, WriteOutcome } from './history.ts'
import { check, formatViolation, summarize, type ViolationKind } from './register-checker.ts'

let nextId = 0
function put(key: string, value: string, t0: number, t1: number, outcome: WriteOutcome): WriteOp {
  return {
    kind: 'write',
    id: nextId++,
    client: 0,
    key,
    value,
    invokedAt: t0,
    completedAt: t1,
    outcome,
    node: 'n1',
  }
}
function read(key: string, t0: number, t1: number, value?: string): ReadOp {
  return value === undefined
    ? {
        kind: 'read',
        id: nextId++,
        client: 1,
        key,
        invokedAt: t0,
        completedAt: t1,
        outcome: 'not_found',
        node: 'c1',
        via: 'cache',
      }
    : {
        kind: 'read',
        id: nextId++,
        client: 1,
        key,
        invokedAt: t0,
        completedAt: t1,
        outcome: 'value',
        value,
        node: 'n2',
        via: 'db',
      }
}
function finals(...maps: Record<string, string>[]): FinalData[] {
  return maps.map((m, i) => ({ member: `n${i + 1}`, data: new Map(Object.entries(m)) }))
}
function kinds(history: Op[], data: FinalData[] = []): ViolationKind[] {
  return check(history, data).map((v) => v.kind)
}

describe('write-once register checker', () => {
  it('passes valid histories', () => {
    const cases: [string, Op[], FinalData[]][] = [
      [
        'a put and reads',
        [put('k', 'a', 0, 10, 'created'), read('k', 11, 12, 'a'), read('k', 13, 14, 'a')],
        finals({ k: 'a' }, { k: 'a' }),
      ],
      [
        'a read concurrent with the create misses',
        [put('k', 'a', 0, 10, 'created'), read('k', 5, 8), read('k', 9, 11, 'a')],
        finals({ k: 'a' }),
      ],
      [
        'a late indeterminate put',
        [put('k', 'a', 0, 10, 'indeterminate'), read('k', 11, 12), read('k', 20, 21, 'a')],
        finals({ k: 'a' }),
      ],
      [
        'an indeterminate put that never happened',
        [put('k', 'a', 0, 10, 'indeterminate'), read('k', 11, 12)],
        finals({}),
      ],
      [
        'identical re-puts',
        [
          put('k', 'a', 0, 10, 'created'),
          put('k', 'a', 20, 30, 'exists'),
          put('k', 'a', 5, 9, 'exists'),
        ],
        finals({ k: 'a' }),
      ],
      [
        'a race: one created, the others conflict',
        [
          put('k', 'a', 0, 10, 'created'),
          put('k', 'b', 1, 9, 'conflict'),
          put('k', 'c', 2, 12, 'conflict'),
          read('k', 13, 14, 'a'),
        ],
        finals({ k: 'a' }, { k: 'a' }),
      ],
      [
        'a race won by an indeterminate put',
        [
          put('k', 'a', 0, 10, 'indeterminate'),
          put('k', 'b', 1, 12, 'conflict'),
          read('k', 13, 14, 'a'),
        ],
        finals({ k: 'a' }),
      ],
      ['reads of a never-written key', [read('never', 0, 1), read('never', 2, 3)], finals({}, {})],
    ]
    for (const [name, h, f] of cases) assert.deepEqual(check(h, f).map(formatViolation), [], name)
  })

  const broken: [ViolationKind, string, Op[], FinalData[]][] = [
    [
      'unwritten-value',
      'a read of a value never put',
      [put('k', 'a', 0, 10, 'created'), read('k', 11, 12, 'z')],
      [],
    ],
    [
      'unwritten-value',
      'a read before its put began',
      [read('k', 0, 5, 'a'), put('k', 'a', 6, 10, 'indeterminate')],
      [],
    ],
    [
      'unwritten-value',
      'a member holding a value never put',
      [put('k', 'a', 0, 10, 'conflict')],
      finals({ k: 'z' }),
    ],
    [
      'different-values',
      'two reads disagree',
      [
        put('k', 'a', 0, 10, 'indeterminate'),
        put('k', 'b', 0, 10, 'indeterminate'),
        read('k', 11, 12, 'a'),
        read('k', 13, 14, 'b'),
      ],
      [],
    ],
    [
      'different-values',
      'a read disagrees with the acknowledged put',
      [
        put('k', 'a', 0, 10, 'created'),
        put('k', 'b', 0, 10, 'indeterminate'),
        read('k', 11, 12, 'b'),
      ],
      [],
    ],
    [
      'double-create',
      'two values acknowledged',
      [put('k', 'a', 0, 10, 'created'), put('k', 'b', 1, 11, 'created')],
      [],
    ],
    [
      'double-create',
      'created and exists for different values',
      [put('k', 'a', 0, 10, 'created'), put('k', 'b', 20, 30, 'exists')],
      [],
    ],
    [
      'false-conflict',
      'a conflict with nothing else possible',
      [put('k', 'a', 0, 10, 'conflict')],
      [],
    ],
    [
      'false-conflict',
      'a conflict against its own value',
      [
        put('k', 'a', 0, 10, 'created'),
        put('k', 'b', 0, 5, 'indeterminate'),
        put('k', 'a', 20, 30, 'conflict'),
      ],
      [],
    ],
    [
      'lost-write',
      'a miss after the create',
      [put('k', 'a', 0, 10, 'created'), read('k', 11, 12)],
      [],
    ],
    [
      'lost-write',
      'a miss after a read of the value',
      [put('k', 'a', 0, 100, 'indeterminate'), read('k', 10, 20, 'a'), read('k', 21, 22)],
      [],
    ],
    [
      'lost-write',
      'a miss after a conflict',
      [put('k', 'a', 0, 100, 'indeterminate'), put('k', 'b', 5, 10, 'conflict'), read('k', 11, 12)],
      [],
    ],
    [
      'lost-write',
      'a member without the key',
      [put('k', 'a', 0, 10, 'created')],
      finals({ k: 'a' }, {}),
    ],
  ]
  for (const [kind, name, h, f] of broken) {
    it(`finds ${kind}: ${name}`, () => {
      const found = check(h, f)
      assert(
        found.some((v) => v.kind === kind),
        `${kind} not found in ${JSON.stringify(found.map((v) => v.kind))}`,
      )
      const v = found.find((x) => x.kind === kind)!
      // The violation names operations of the history (none only for a member's data).
      for (const op of v.ops) assert(h.includes(op))
      assert.match(formatViolation(v), new RegExp(`^${kind}`))
    })
  }

  it('finds replicas that differ, with a sample of keys', () => {
    const v = check([], finals({ a: '1', b: '2' }, { a: '1', b: '3', c: '4' }))
    const div = v.filter((x) => x.kind === 'replica-divergence')
    assert.equal(div.length, 1)
    assert.match(div[0]!.message, /differ on 2 keys/)
  })

  it('finds no violation in random valid histories, and the one injected', (t) => {
    const seed = Number(process.env.CHECKER_SEED ?? Math.floor(Math.random() * 2 ** 31))
    t.diagnostic(
      `seed ${seed} (replay: CHECKER_SEED=${seed} node --import tsx --test test/chaos/register-checker.test.ts)`,
    )
    const rng = new SeededRng(seed)
    for (let round = 0; round < 30; round++) {
      const { history, data } = randomValidHistory(rng, 200)
      assert.deepEqual(check(history, data).map(formatViolation), [], `round ${round}`)
      const { history: bad, kind } = breakOne(rng, history)
      const found = kinds(bad, data)
      assert(
        found.includes(kind),
        `round ${round}: injected ${kind}, found ${JSON.stringify(found)}`,
      )
    }
  })

  it('checks about 200,000 operations in a few seconds', () => {
    const rng = new SeededRng(1)
    const { history, data } = randomValidHistory(rng, 60_000)
    assert(history.length > 150_000, `${history.length} operations`)
    const started = performance.now()
    const v = check(history, data)
    const ms = performance.now() - started
    assert.deepEqual(v.map(formatViolation), [])
    assert.equal(summarize(history, v).operations, history.length)
    assert(ms < 10_000, `${ms} ms`)
  })
})

/** between is a real number in [lo, hi). */
function between(rng: SeededRng, lo: number, hi: number): number {
  return lo + rng.next() * (hi - lo)
}

/** randomValidHistory runs a sequential register per key under random concurrency: each put
 * takes effect at one instant inside its interval (indeterminate ones maybe later, or never),
 * and each read sees the state at one instant inside its own. */
function randomValidHistory(rng: SeededRng, keys: number): { history: Op[]; data: FinalData[] } {
  const history: Op[] = []
  const final: Record<string, string> = {}
  for (let k = 0; k < keys; k++) {
    const key = `k${k}`
    let value: string | undefined
    let setAt = Infinity
    const events: { at: number; op: () => void }[] = []
    const n = 1 + rng.int(6)
    for (let i = 0; i < n; i++) {
      const t0 = between(rng, 0, 100)
      const t1 = t0 + between(rng, 0.1, 20)
      const at = between(rng, t0, t1)
      if (rng.chance(0.5)) {
        const v = rng.chance(0.3) && value !== undefined ? value : `v${k}-${i}`
        const indeterminate = rng.chance(0.2)
        const lateAt = indeterminate && rng.chance(0.5) ? t1 + between(rng, 0, 50) : at
        const never = indeterminate && rng.chance(0.3)
        events.push({
          at: lateAt,
          op: () => {
            let outcome: WriteOutcome
            if (never) outcome = 'indeterminate'
            else if (value === undefined) {
              value = v
              setAt = lateAt
              outcome = indeterminate ? 'indeterminate' : 'created'
            } else outcome = indeterminate ? 'indeterminate' : value === v ? 'exists' : 'conflict'
            history.push(put(key, v, t0, t1, outcome))
          },
        })
      } else {
        events.push({
          at,
          op: () => history.push(read(key, t0, t1, at >= setAt ? value : undefined)),
        })
      }
    }
    for (const e of events.sort((a, b) => a.at - b.at)) e.op()
    if (value !== undefined) final[key] = value
  }
  return { history, data: finals(final, final) }
}

/** breakOne changes one operation so that the history breaks a rule, and says which. */
function breakOne(rng: SeededRng, history: Op[]): { history: Op[]; kind: ViolationKind } {
  const bad = [...history]
  const created = bad.filter((o): o is WriteOp => o.kind === 'write' && o.outcome === 'created')
  const w = created[rng.int(created.length)]!
  switch (rng.int(3)) {
    case 0:
      bad.push(read(w.key, w.completedAt + 1, w.completedAt + 2, 'forged'))
      return { history: bad, kind: 'unwritten-value' }
    case 1:
      bad.push(read(w.key, w.completedAt + 1, w.completedAt + 2))
      return { history: bad, kind: 'lost-write' }
    default:
      bad.push(put(w.key, 'other', w.completedAt + 1, w.completedAt + 2, 'created'))
      return { history: bad, kind: 'double-create' }
  }
}
