// The checker of a chaos run: write-once registers, one per key. It reads the recorded
// history (history.ts) and every member's final data, and reports each violation with the
// operations that show it. Per key, with "possible" values being those of puts answered
// created or exists, or left indeterminate (an error or timeout: the put may have taken effect
// at any time after it was invoked, or never):
//
// - unwritten-value   a read (or a member's final data) holds a value no possible put wrote,
//                     or one whose every put was invoked only after the read had completed;
// - different-values  two reads, or a read and a member's data, or a read and an acknowledged
//                     put, disagree on the value;
// - double-create     two puts of different values were both acknowledged (created or exists),
//                     or two puts were both answered created;
// - false-conflict    a put was answered conflict although the key holds its value, or no put of
//                     another value was possible;
// - lost-write        an acknowledged put (created, exists or conflict: each proves a value is
//                     there), or a read of a value, completed before a read that was invoked
//                     later and answered "not found"; or a member's final data lacks such a key;
// - replica-divergence members' final data differ (keys missing on some, or other values).
import type { FinalData, Op, ReadOp, WriteOp } from './history.ts'

export type ViolationKind =
  | 'unwritten-value'
  | 'different-values'
  | 'double-create'
  | 'false-conflict'
  | 'lost-write'
  | 'replica-divergence'

/** Violation is one broken rule, with the operations that show it. */
export interface Violation {
  readonly kind: ViolationKind
  /** key is the key concerned ('' for a divergence over many keys). */
  readonly key: string
  readonly message: string
  readonly ops: readonly Op[]
}

interface KeyOps {
  writes: WriteOp[]
  reads: ReadOp[]
}

/** SAMPLE_KEYS is how many differing keys a divergence names. */
const SAMPLE_KEYS = 10

function byKey(history: readonly Op[]): Map<string, KeyOps> {
  const keys = new Map<string, KeyOps>()
  for (const op of history) {
    let k = keys.get(op.key)
    if (!k) keys.set(op.key, (k = { writes: [], reads: [] }))
    if (op.kind === 'write') k.writes.push(op)
    else if (op.outcome !== 'error') k.reads.push(op)
  }
  return keys
}

const acknowledged = (w: WriteOp): boolean => w.outcome === 'created' || w.outcome === 'exists'
const possible = (w: WriteOp): boolean => w.outcome !== 'conflict'

/** checkKey applies the per-key rules to one key's operations and its final values. */
function checkKey(
  key: string,
  ops: KeyOps,
  finals: readonly { member: string; value: string | undefined }[],
  out: Violation[],
): void {
  const { writes, reads } = ops
  const add = (kind: ViolationKind, message: string, involved: readonly Op[]): void => {
    out.push({ kind, key, message, ops: involved })
  }

  // Acknowledged puts must agree, and only one may have created the value.
  const acked = writes.filter(acknowledged)
  const ackedByValue = new Map<string, WriteOp>()
  for (const w of acked) if (!ackedByValue.has(w.value)) ackedByValue.set(w.value, w)
  if (ackedByValue.size > 1)
    add('double-create', `puts of ${ackedByValue.size} different values were acknowledged`, [
      ...ackedByValue.values(),
    ])
  const created = writes.filter((w) => w.outcome === 'created')
  if (created.length > 1 && ackedByValue.size === 1)
    add('double-create', `${created.length} puts were answered created`, created)

  // Every value read must have been possibly written, by a put invoked before the read ended.
  const possibleWrites = writes.filter(possible)
  const valueReads = reads.filter((r) => r.outcome === 'value')
  for (const r of valueReads) {
    const candidates = possibleWrites.filter((w) => w.value === r.value)
    if (candidates.length === 0)
      add('unwritten-value', `read ${JSON.stringify(r.value)}, which no put could have written`, [
        r,
      ])
    else if (candidates.every((w) => w.invokedAt > r.completedAt))
      add('unwritten-value', `read ${JSON.stringify(r.value)} before any put of it began`, [
        r,
        ...candidates,
      ])
  }

  // One value: reads agree with each other and with acknowledged puts.
  const readByValue = new Map<string, ReadOp>()
  for (const r of valueReads) if (!readByValue.has(r.value!)) readByValue.set(r.value!, r)
  if (readByValue.size > 1)
    add('different-values', `reads returned ${readByValue.size} different values`, [
      ...readByValue.values(),
    ])
  if (ackedByValue.size === 1 && readByValue.size >= 1) {
    const [ackedValue, w] = [...ackedByValue.entries()][0]!
    for (const [v, r] of readByValue)
      if (v !== ackedValue)
        add('different-values', 'a read disagrees with an acknowledged put', [w, r])
  }

  // Final data: a possible value, agreeing with reads and acknowledged puts; present when any
  // operation proved a value is there.
  const known =
    ackedByValue.size === 1
      ? [...ackedByValue.keys()][0]
      : readByValue.size === 1
        ? [...readByValue.keys()][0]
        : undefined
  const witness: Op | undefined =
    acked[0] ?? valueReads[0] ?? writes.find((w) => w.outcome === 'conflict')
  for (const f of finals) {
    if (f.value === undefined) {
      if (witness)
        add('lost-write', `member ${f.member} does not hold the key after the run`, [witness])
      continue
    }
    if (!possibleWrites.some((w) => w.value === f.value))
      add(
        'unwritten-value',
        `member ${f.member} holds ${JSON.stringify(f.value)}, which no put could have written`,
        [],
      )
    else if (known !== undefined && f.value !== known)
      add(
        'different-values',
        `member ${f.member} holds another value than was acknowledged or read`,
        [(ackedByValue.get(known) ?? readByValue.get(known))!],
      )
  }

  // A conflict claims another value is there.
  const decided = known ?? finals.find((f) => f.value !== undefined)?.value
  for (const w of writes) {
    if (w.outcome !== 'conflict') continue
    if (decided !== undefined && decided === w.value)
      add('false-conflict', `answered conflict, but the key holds this very value`, [w])
    else if (!possibleWrites.some((o) => o.value !== w.value && o.invokedAt <= w.completedAt))
      add('false-conflict', 'answered conflict, but no put of another value was possible', [w])
  }

  // Real time: once a value was proved to be there, no later read may miss it.
  let proof: Op | undefined
  for (const op of [...acked, ...valueReads, ...writes.filter((w) => w.outcome === 'conflict')])
    if (!proof || op.completedAt < proof.completedAt) proof = op
  if (proof) {
    for (const r of reads) {
      if (r.outcome === 'not_found' && r.invokedAt > proof.completedAt) {
        add('lost-write', `read "not found" after ${describeProof(proof)}`, [proof, r])
        break
      }
    }
  }
}

function describeProof(op: Op): string {
  return op.kind === 'read' ? 'the value had been read' : `a put was answered ${op.outcome}`
}

/** check returns every violation in the history and the members' final data. */
export function check(history: readonly Op[], finals: readonly FinalData[]): Violation[] {
  const out: Violation[] = []
  const keys = byKey(history)
  const allKeys = new Set<string>(keys.keys())
  for (const f of finals) for (const k of f.data.keys()) allKeys.add(k)
  for (const key of allKeys) {
    const ops = keys.get(key) ?? { writes: [], reads: [] }
    const values = finals.map((f) => ({ member: f.member, value: f.data.get(key) }))
    checkKey(key, ops, values, out)
  }
  out.push(...divergence(finals))
  return out
}

/** divergence compares the members' final data sets with each other. */
function divergence(finals: readonly FinalData[]): Violation[] {
  if (finals.length < 2) return []
  const out: Violation[] = []
  const [first, ...rest] = finals as [FinalData, ...FinalData[]]
  for (const other of rest) {
    const differ: string[] = []
    let count = 0
    const keys = new Set([...first.data.keys(), ...other.data.keys()])
    for (const k of keys) {
      if (first.data.get(k) === other.data.get(k)) continue
      count++
      if (differ.length < SAMPLE_KEYS) differ.push(k)
    }
    if (count > 0)
      out.push({
        kind: 'replica-divergence',
        key: '',
        message:
          `members ${first.member} (${first.data.size} keys) and ${other.member} ` +
          `(${other.data.size} keys) differ on ${count} keys, e.g. ${differ.map((k) => JSON.stringify(k)).join(', ')}`,
        ops: [],
      })
  }
  return out
}

/** Summary counts a history's operations and a check's violations. */
export interface Summary {
  readonly operations: number
  readonly keys: number
  readonly byOutcome: Record<string, number>
  readonly violations: Record<string, number>
}

export function summarize(history: readonly Op[], violations: readonly Violation[]): Summary {
  const byOutcome: Record<string, number> = {}
  const keys = new Set<string>()
  for (const op of history) {
    keys.add(op.key)
    const k = `${op.kind} ${op.outcome}`
    byOutcome[k] = (byOutcome[k] ?? 0) + 1
  }
  const byKind: Record<string, number> = {}
  for (const v of violations) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1
  return { operations: history.length, keys: keys.size, byOutcome, violations: byKind }
}

/** formatOp is one line naming an operation. */
export function formatOp(op: Op): string {
  const times = `[${op.invokedAt.toFixed(1)} .. ${op.completedAt.toFixed(1)} ms]`
  const what =
    op.kind === 'write'
      ? `put ${JSON.stringify(op.value)} -> ${op.outcome}`
      : `read via ${op.via} -> ${op.outcome === 'value' ? JSON.stringify(op.value) : op.outcome}`
  const err = op.error ? ` (${op.error})` : ''
  return `#${op.id} client ${op.client} ${op.node} ${times} ${what}${err}`
}

/** formatViolation is a violation in words, with its operations one per line. */
export function formatViolation(v: Violation): string {
  const head = `${v.kind}${v.key ? ` key ${JSON.stringify(v.key)}` : ''}: ${v.message}`
  return [head, ...v.ops.map((op) => `    ${formatOp(op)}`)].join('\n')
}
