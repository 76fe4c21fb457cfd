// The checker of a chaos run. Every key is a write-once register: once set, its value never
// changes. check() reads the recorded history (history.ts) and every member's final data and
// reports each violation with the operations (and members) that show it. It is pure: no I/O,
// no clock, no randomness; the same input gives the same violations in the same order.
//
// Per key, a put is "possible" when it may have written its value: answered created or
// exists, or left indeterminate (an error or a timeout: it may have taken effect at any time
// after it was invoked, even after the client gave up, or never). A put answered conflict
// wrote nothing. A "proof" that the key holds a value is a put answered created, exists or
// conflict, or a read that returned a value. Times are real time on the harness's one clock:
// an operation invoked after another completed cannot have happened before it.
//
// - unwritten-value    a read, or a member's final data, holds a value that no possible put
//                      of the key wrote, or (reads) whose every possible put was invoked only
//                      after the read had completed.
// - different-values   the key was seen with two values: two reads, a read and a member's
//                      data, two members' data, or any of these and an acknowledged put.
// - double-create      puts of two different values were both acknowledged (created or
//                      exists); or two puts of one value were both answered created.
// - false-conflict     a put of v was answered conflict although the key holds v, or although
//                      no possible put of another value had been invoked by then.
// - lost-write         a read answered "not found" though it was invoked after a proof had
//                      completed; or a member's final data lacks a key some proof showed.
// - replica-divergence the members' final data sets differ (a bounded sample of keys, with
//                      counts).
//
// A read or final value reported as unwritten-value is left out of the other rules, so one
// wrong value is reported once. Indeterminate puts never cause a violation by themselves.
//
// Cost: one pass to index the history by key, then per key work linear in its operations
// (a sort of its value reads aside), and one pass over the members' keys.
import type { FinalData, Op, ReadOp, ReadOutcome, WriteOp, WriteOutcome } from './history.ts'

/** ViolationKind names the rule a violation breaks (see the module comment). */
export type ViolationKind =
  | 'unwritten-value'
  | 'different-values'
  | 'double-create'
  | 'false-conflict'
  | 'lost-write'
  | 'replica-divergence'

/** VIOLATION_KINDS lists every kind, in the order check() reports them per key. */
export const VIOLATION_KINDS: readonly ViolationKind[] = [
  'unwritten-value',
  'different-values',
  'double-create',
  'false-conflict',
  'lost-write',
  'replica-divergence',
]

/** Violation is one broken rule with what shows it. */
export interface Violation {
  readonly kind: ViolationKind
  /** key is the key concerned; '' for replica-divergence, which spans keys (see sampleKeys). */
  readonly key: string
  /** message explains the violation in one line. */
  readonly message: string
  /** opIds are the ids of ops, in the same order. */
  readonly opIds: readonly number[]
  /** ops are the operations involved (possibly none, for final data alone). */
  readonly ops: readonly Op[]
  /** members are the members whose final data is involved. */
  readonly members: readonly string[]
  /** sampleKeys (replica-divergence only) are some of the keys the members differ on. */
  readonly sampleKeys?: readonly string[]
  /** details are extra lines for formatViolation (replica-divergence: one per sample key). */
  readonly details?: readonly string[]
}

/** CheckOptions tunes check(). */
export interface CheckOptions {
  /** sampleKeys bounds the keys a replica-divergence names; 10 by default. */
  readonly sampleKeys?: number
}

/** check returns every violation in a history and the members' final data: per key in the
 * order keys first appear (history first, then final data), then replica-divergence. */
export function check(
  history: readonly Op[],
  finals: readonly FinalData[],
  options: CheckOptions = {},
): Violation[] {
  const out: Violation[] = []
  const keys = indexByKey(history)
  for (const f of finals) for (const key of f.data.keys()) if (!keys.has(key)) keys.set(key, [])
  const divergence = new Divergence(
    finals.map((f) => f.member),
    options.sampleKeys ?? 10,
  )
  for (const [key, ops] of keys) {
    const facts = keyFacts(key, ops, finals)
    checkKey(facts, out)
    divergence.add(key, facts.holdings, ops)
  }
  const diverged = divergence.violation()
  if (diverged) out.push(diverged)
  return out
}

/** indexByKey groups the history's operations by key, in history order. */
function indexByKey(history: readonly Op[]): Map<string, Op[]> {
  const keys = new Map<string, Op[]>()
  for (const op of history) {
    const ops = keys.get(op.key)
    if (ops) ops.push(op)
    else keys.set(op.key, [op])
  }
  return keys
}

/** Holding is one member's final value of a key (undefined: the member lacks the key). */
interface Holding {
  readonly member: string
  readonly value: string | undefined
}

/** KeyFacts is one key's operations, sorted out for the rules. */
interface KeyFacts {
  readonly key: string
  readonly writes: readonly WriteOp[]
  /** acked are the puts answered created or exists. */
  readonly acked: readonly WriteOp[]
  readonly conflicts: readonly WriteOp[]
  /** possible maps a value to the puts that may have written it (created, exists,
   * indeterminate). */
  readonly possible: ReadonlyMap<string, readonly WriteOp[]>
  readonly valueReads: readonly ReadOp[]
  readonly notFoundReads: readonly ReadOp[]
  readonly holdings: readonly Holding[]
}

function keyFacts(key: string, ops: readonly Op[], finals: readonly FinalData[]): KeyFacts {
  const writes: WriteOp[] = []
  const valueReads: ReadOp[] = []
  const notFoundReads: ReadOp[] = []
  for (const op of ops) {
    if (op.kind === 'write') writes.push(op)
    else if (op.outcome === 'value') valueReads.push(op)
    else if (op.outcome === 'not_found') notFoundReads.push(op)
  }
  const possible = new Map<string, WriteOp[]>()
  for (const w of writes) {
    if (w.outcome === 'conflict' || w.outcome === 'failed') continue
    const list = possible.get(w.value)
    if (list) list.push(w)
    else possible.set(w.value, [w])
  }
  return {
    key,
    writes,
    acked: writes.filter(isAcked),
    conflicts: writes.filter((w) => w.outcome === 'conflict'),
    possible,
    valueReads,
    notFoundReads,
    holdings: finals.map((f) => ({ member: f.member, value: f.data.get(key) })),
  }
}

const isAcked = (w: WriteOp): boolean => w.outcome === 'created' || w.outcome === 'exists'

/** readValue is the value a read returned ('' if a value read recorded none). */
const readValue = (r: ReadOp): string => r.value ?? ''

/** checkKey applies every per-key rule. */
function checkKey(facts: KeyFacts, out: Violation[]): void {
  const reads = checkUnwrittenReads(facts, out)
  const holdings = checkUnwrittenHoldings(facts, out)
  const seen = sightings(facts, reads, holdings)
  checkDifferentValues(facts.key, seen, out)
  checkDoubleCreate(facts, out)
  // The key's one value, if everything seen agrees on one (several are reported above).
  const decided = seen.size === 1 ? [...seen.keys()][0] : undefined
  checkConflicts(facts, decided, out)
  checkStaleNotFound(facts, reads, out)
  checkSeenBeforeCreated(facts, reads, out)
  checkMissingHoldings(facts, reads, out)
}

/** violation builds a Violation, deriving opIds from ops. */
function violation(
  kind: ViolationKind,
  key: string,
  message: string,
  ops: readonly Op[],
  members: readonly string[] = [],
): Violation {
  return { kind, key, message, opIds: ops.map((o) => o.id), ops, members }
}

/** earliestInvocation is the earliest invokedAt of some puts. */
function earliestInvocation(writes: readonly WriteOp[]): number {
  let t = Infinity
  for (const w of writes) t = Math.min(t, w.invokedAt)
  return t
}

/** checkUnwrittenReads reports value reads no possible put explains and returns the others. */
function checkUnwrittenReads(facts: KeyFacts, out: Violation[]): ReadOp[] {
  const explained: ReadOp[] = []
  for (const r of facts.valueReads) {
    const v = readValue(r)
    const candidates = facts.possible.get(v)
    if (!candidates) {
      out.push(
        violation(
          'unwritten-value',
          facts.key,
          `read ${show(v)}, which no put of the key could have written`,
          [r],
        ),
      )
    } else if (earliestInvocation(candidates) > r.completedAt) {
      out.push(
        violation(
          'unwritten-value',
          facts.key,
          `read ${show(v)} at ${ms(r.completedAt)}, before any put of it was invoked (first at ${ms(earliestInvocation(candidates))})`,
          [r, ...candidates],
        ),
      )
    } else explained.push(r)
  }
  return explained
}

/** checkUnwrittenHoldings reports final values no possible put wrote, one violation per
 * value, and returns the members' other values. */
function checkUnwrittenHoldings(facts: KeyFacts, out: Violation[]): Holding[] {
  const explained: Holding[] = []
  const unwritten = new Map<string, string[]>()
  for (const h of facts.holdings) {
    if (h.value === undefined) continue
    if (facts.possible.has(h.value)) explained.push(h)
    else unwritten.set(h.value, [...(unwritten.get(h.value) ?? []), h.member])
  }
  for (const [value, members] of unwritten)
    out.push(
      violation(
        'unwritten-value',
        facts.key,
        `${memberList(members)} ${members.length === 1 ? 'holds' : 'hold'} ${show(value)}, which no put of the key could have written`,
        [],
        members,
      ),
    )
  return explained
}

/** Sighting is where one value of a key was seen. */
interface Sighting {
  readonly acked: WriteOp[]
  readonly reads: ReadOp[]
  readonly members: string[]
}

/** sightings groups the acknowledged puts, explained reads and final values by value. */
function sightings(
  facts: KeyFacts,
  reads: readonly ReadOp[],
  holdings: readonly Holding[],
): Map<string, Sighting> {
  const byValue = new Map<string, Sighting>()
  const at = (v: string): Sighting => {
    let s = byValue.get(v)
    if (!s) byValue.set(v, (s = { acked: [], reads: [], members: [] }))
    return s
  }
  for (const w of facts.acked) at(w.value).acked.push(w)
  for (const r of reads) at(readValue(r)).reads.push(r)
  for (const h of holdings) if (h.value !== undefined) at(h.value).members.push(h.member)
  return byValue
}

/** checkDifferentValues reports a key seen with two values by reads or final data (two
 * acknowledged values alone are a double-create). */
function checkDifferentValues(
  key: string,
  seen: ReadonlyMap<string, Sighting>,
  out: Violation[],
): void {
  if (seen.size < 2) return
  const observed = [...seen.values()].filter((s) => s.reads.length > 0 || s.members.length > 0)
  const ackedCount = [...seen.values()].filter((s) => s.acked.length > 0).length
  const readOutsideAcked = observed.some((s) => s.acked.length === 0) && ackedCount > 0
  if (observed.length < 2 && !readOutsideAcked) return
  const ops: Op[] = []
  const members: string[] = []
  const parts: string[] = []
  for (const [value, s] of seen) {
    const firstAcked = s.acked[0]
    const firstRead = earliestCompleted(s.reads)
    if (firstAcked) ops.push(firstAcked)
    if (firstRead) ops.push(firstRead)
    members.push(...s.members)
    parts.push(`${show(value)} (${describeSighting(s)})`)
  }
  out.push(
    violation(
      'different-values',
      key,
      `${seen.size} values seen: ${parts.join('; ')}`,
      ops,
      members,
    ),
  )
}

function describeSighting(s: Sighting): string {
  const parts: string[] = []
  if (s.acked.length > 0) parts.push(count(s.acked.length, 'acknowledged put'))
  if (s.reads.length > 0) parts.push(count(s.reads.length, 'read'))
  if (s.members.length > 0) parts.push(`held by ${memberList(s.members)}`)
  return parts.join(', ')
}

/** earliestCompleted is the op that completed first, if any. */
function earliestCompleted<T extends Op>(ops: readonly T[]): T | undefined {
  let first: T | undefined
  for (const op of ops) if (!first || op.completedAt < first.completedAt) first = op
  return first
}

/** checkDoubleCreate reports acknowledged puts of different values, or two puts of one value
 * both answered created. */
function checkDoubleCreate(facts: KeyFacts, out: Violation[]): void {
  const byValue = new Map<string, WriteOp>()
  for (const w of facts.acked) {
    const prev = byValue.get(w.value)
    if (!prev || (prev.outcome !== 'created' && w.outcome === 'created')) byValue.set(w.value, w)
  }
  if (byValue.size > 1) {
    const ops = [...byValue.values()]
    const list = ops.map((w) => `${show(w.value)} (#${w.id} ${w.outcome})`).join(', ')
    out.push(
      violation(
        'double-create',
        facts.key,
        `puts of ${ops.length} different values were acknowledged: ${list}`,
        ops,
      ),
    )
    return
  }
  const created = facts.acked.filter((w) => w.outcome === 'created')
  if (created.length > 1)
    out.push(
      violation(
        'double-create',
        facts.key,
        `${created.length} puts of ${show(created[0]!.value)} were each answered created (one put sets a key)`,
        created,
      ),
    )
}

/** checkConflicts reports puts answered conflict that nothing explains: a conflict of v means
 * another value was there, so a possible put of another value (the decided one, if known)
 * must have been invoked before the conflict completed. */
function checkConflicts(facts: KeyFacts, decided: string | undefined, out: Violation[]): void {
  if (facts.conflicts.length === 0) return
  const firstInvoked = [...facts.possible].map(([value, ws]) => ({
    value,
    at: earliestInvocation(ws),
  }))
  firstInvoked.sort((a, b) => a.at - b.at)
  for (const c of facts.conflicts) {
    if (decided === c.value) {
      const proof = proofOfValue(facts, c.value)
      out.push(
        violation(
          'false-conflict',
          facts.key,
          `put of ${show(c.value)} answered conflict, but the key holds that very value`,
          proof ? [c, proof] : [c],
          facts.holdings.filter((h) => h.value === c.value).map((h) => h.member),
        ),
      )
      continue
    }
    const other = firstInvoked.find(
      (e) => e.value !== c.value && (decided === undefined || e.value === decided),
    )
    if (other && other.at <= c.completedAt) continue
    const others = facts.writes.filter((w) => w !== c && w.outcome !== 'conflict')
    const why = other
      ? `the first possible put of ${show(other.value)} was invoked only at ${ms(other.at)}`
      : 'no put of another value could have taken effect'
    out.push(
      violation(
        'false-conflict',
        facts.key,
        `put of ${show(c.value)} answered conflict at ${ms(c.completedAt)}, but ${why}`,
        [c, ...others.filter((w) => w.value !== c.value)],
      ),
    )
  }
}

/** proofOfValue is an acknowledged put of value, else a read of it, if any. */
function proofOfValue(facts: KeyFacts, value: string): Op | undefined {
  return (
    facts.acked.find((w) => w.value === value) ??
    facts.valueReads.find((r) => readValue(r) === value)
  )
}

/** earliestProof is the proof that completed first: an acknowledged or conflicting put, or an
 * explained read of a value. */
function earliestProof(facts: KeyFacts, reads: readonly ReadOp[]): Op | undefined {
  const a = earliestCompleted(facts.acked)
  const c = earliestCompleted(facts.conflicts)
  const r = earliestCompleted(reads)
  return earliestCompleted([a, c, r].filter((op): op is Op => op !== undefined))
}

/** checkStaleNotFound reports each "not found" read invoked after a proof completed. */
function checkStaleNotFound(facts: KeyFacts, reads: readonly ReadOp[], out: Violation[]): void {
  const proof = earliestProof(facts, reads)
  if (!proof) return
  for (const r of facts.notFoundReads) {
    if (r.invokedAt <= proof.completedAt) continue
    out.push(
      violation(
        'lost-write',
        facts.key,
        `read "not found" (invoked ${ms(r.invokedAt)}) after ${describeProof(proof)} at ${ms(proof.completedAt)}`,
        [proof, r],
      ),
    )
  }
}

/** checkSeenBeforeCreated: a put answered created set the key during its own interval, so
 * nothing may have shown the key holding that value (a put of it answered exists, a read of
 * it) before that put began: if something did, the value was lost and written again. */
function checkSeenBeforeCreated(facts: KeyFacts, reads: readonly ReadOp[], out: Violation[]): void {
  const created = facts.writes.filter((w) => w.outcome === 'created')
  // Two creates are a double-create, an early conflict a false-conflict (reported above).
  if (created.length !== 1) return
  for (const w of created) {
    const others = [
      ...facts.acked.filter((o) => o !== w && o.value === w.value),
      ...reads.filter((r) => readValue(r) === w.value),
    ]
    const proof = earliestCompleted(others)
    if (!proof || proof.completedAt >= w.invokedAt) continue
    out.push(
      violation(
        'lost-write',
        facts.key,
        `put #${w.id} was answered created (invoked ${ms(w.invokedAt)}), but ${describeProof(proof)} ` +
          `already at ${ms(proof.completedAt)}: the key's value was lost and written again`,
        [proof, w],
      ),
    )
  }
}

function describeProof(op: Op): string {
  return op.kind === 'read'
    ? `#${op.id} had read ${show(readValue(op))}`
    : `put #${op.id} of ${show(op.value)} was answered ${op.outcome}`
}

/** checkMissingHoldings reports members whose final data lacks a key some proof showed. */
function checkMissingHoldings(facts: KeyFacts, reads: readonly ReadOp[], out: Violation[]): void {
  const missing = facts.holdings.filter((h) => h.value === undefined).map((h) => h.member)
  if (missing.length === 0) return
  const proof =
    earliestCompleted(facts.acked) ?? earliestCompleted(reads) ?? earliestCompleted(facts.conflicts)
  if (!proof) return
  out.push(
    violation(
      'lost-write',
      facts.key,
      `${memberList(missing)} ${missing.length === 1 ? 'lacks' : 'lack'} the key after the run, though ${describeProof(proof)}`,
      [proof],
      missing,
    ),
  )
}

/** Divergence tallies, key by key, where the members' final data differ. */
class Divergence {
  private readonly missing: Map<string, number>
  private differing = 0
  private otherValues = 0
  private readonly sample: { key: string; holdings: readonly Holding[]; ops: readonly Op[] }[] = []

  constructor(
    private readonly members: readonly string[],
    private readonly sampleSize: number,
  ) {
    this.missing = new Map(members.map((m) => [m, 0]))
  }

  /** add tallies one key's final values (one per member, in member order). */
  add(key: string, holdings: readonly Holding[], ops: readonly Op[]): void {
    if (agree(holdings)) return
    this.differing++
    const values = new Set<string>()
    for (const h of holdings) {
      if (h.value === undefined) this.missing.set(h.member, (this.missing.get(h.member) ?? 0) + 1)
      else values.add(h.value)
    }
    if (values.size > 1) this.otherValues++
    if (this.sample.length < this.sampleSize) this.sample.push({ key, holdings, ops })
  }

  /** violation is the replica-divergence found, if any. */
  violation(): Violation | undefined {
    if (this.differing === 0) return undefined
    const counts = [...this.missing].filter(([, n]) => n > 0).map(([m, n]) => `${m} lacks ${n}`)
    if (this.otherValues > 0) counts.push(`${this.otherValues} with different values`)
    const examples = this.sample.slice(0, 3).map((s) => show(s.key))
    // Each sample key's first put that may have written it, to start an investigation from.
    const ops = this.sample.flatMap((s) => {
      const w = s.ops.find((op) => op.kind === 'write' && op.outcome !== 'conflict')
      return w ? [w] : []
    })
    return {
      ...violation(
        'replica-divergence',
        '',
        `members differ on ${count(this.differing, 'key')} (${counts.join(', ')}), e.g. ${examples.join(', ')}`,
        ops,
        this.members,
      ),
      sampleKeys: this.sample.map((s) => s.key),
      details: this.sample.map(
        (s) =>
          `${show(s.key)}: ${s.holdings.map((h) => `${h.member} ${showHeld(h.value)}`).join(', ')}`,
      ),
    }
  }
}

/** agree tells whether all members hold one value, or all lack the key. */
function agree(holdings: readonly Holding[]): boolean {
  const first = holdings[0]?.value
  for (const h of holdings) if (h.value !== first) return false
  return true
}

/** Summary counts a history's operations and a check's violations. */
export interface Summary {
  readonly operations: number
  /** keys is the number of distinct keys the history touches. */
  readonly keys: number
  readonly writes: Readonly<Record<WriteOutcome, number>>
  readonly reads: Readonly<Record<ReadOutcome, number>>
  /** readsVia counts reads by the tier that answered. */
  readonly readsVia: Readonly<Record<ReadOp['via'], number>>
  readonly violations: Readonly<Record<ViolationKind, number>>
  readonly violationsTotal: number
}

/** summarize counts operations by kind and outcome, keys, and violations by kind. */
export function summarize(history: readonly Op[], violations: readonly Violation[]): Summary {
  const writes: Record<WriteOutcome, number> = {
    created: 0,
    exists: 0,
    conflict: 0,
    indeterminate: 0,
    failed: 0,
  }
  const reads: Record<ReadOutcome, number> = { value: 0, not_found: 0, error: 0 }
  const readsVia: Record<ReadOp['via'], number> = { cache: 0, db: 0 }
  const keys = new Set<string>()
  for (const op of history) {
    keys.add(op.key)
    if (op.kind === 'write') writes[op.outcome]++
    else {
      reads[op.outcome]++
      readsVia[op.via]++
    }
  }
  const byKind = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<
    ViolationKind,
    number
  >
  for (const v of violations) byKind[v.kind]++
  return {
    operations: history.length,
    keys: keys.size,
    writes,
    reads,
    readsVia,
    violations: byKind,
    violationsTotal: violations.length,
  }
}

/** formatSummary is a summary in a few lines. */
export function formatSummary(s: Summary): string {
  const list = (r: Readonly<Record<string, number>>, all = true): string =>
    Object.entries(r)
      .filter(([, n]) => all || n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')
  const found = s.violationsTotal > 0 ? ` (${list(s.violations, false)})` : ''
  return [
    `operations: ${s.operations} over ${count(s.keys, 'key')}`,
    `  writes: ${list(s.writes)}`,
    `  reads: ${list(s.reads)} (via ${list(s.readsVia)})`,
    `violations: ${s.violationsTotal}${found}`,
  ].join('\n')
}

/** formatOp is one operation on one line: id, client, node, times, what and outcome. */
export function formatOp(op: Op): string {
  const times = `[${ms(op.invokedAt)} .. ${ms(op.completedAt)}]`
  const what =
    op.kind === 'write'
      ? `put ${show(op.value)} -> ${op.outcome}`
      : `read via ${op.via} -> ${op.outcome === 'value' ? show(readValue(op)) : op.outcome}`
  const error = op.error === undefined ? '' : ` (${op.error})`
  return `#${op.id} client ${op.client} node ${op.node} ${times} ${what}${error}`
}

/** formatViolation is a violation in words: a headline, then its operations one per line,
 * the members involved and any details. */
export function formatViolation(v: Violation): string {
  const where = v.key === '' ? '' : ` key ${show(v.key)}`
  return [
    `${v.kind}${where}: ${v.message}`,
    ...v.ops.map((op) => `    ${formatOp(op)}`),
    ...(v.members.length > 0 ? [`    members: ${v.members.join(', ')}`] : []),
    ...(v.details ?? []).map((d) => `    ${d}`),
  ].join('\n')
}

/** MAX_SHOWN bounds how much of a key or value a message quotes. */
const MAX_SHOWN = 60

function show(s: string): string {
  const q = JSON.stringify(s)
  return q.length <= MAX_SHOWN ? q : `${q.slice(0, MAX_SHOWN - 4)}..."`
}

function showHeld(v: string | undefined): string {
  return v === undefined ? '(missing)' : show(v)
}

function ms(t: number): string {
  return `${t.toFixed(1)} ms`
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function memberList(members: readonly string[]): string {
  return `${members.length === 1 ? 'member' : 'members'} ${members.join(', ')}`
}
