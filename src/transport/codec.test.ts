// Tests of the wire format: every message type and frame kind round-trips; the decoders refuse
// malformed payloads of many kinds (wrong types, out-of-range numbers, bad lengths, seeded
// random garbage and mutations, truncations) with a FrameError and nothing else; and the
// FrameReader reassembles frames from any chunking and refuses oversized lengths early.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pack } from 'msgpackr'
import { SeededRng } from '../base/index.ts'
import type { Entry, Message } from '../raft/index.ts'
import {
  CTX_LENGTH_MAX,
  decodeChallenge,
  decodeHello,
  decodeProof,
  encodeChallenge,
  encodeProof,
  decodeMessages,
  decodeSnapshotFrame,
  decodeSnapshotReply,
  encodeHello,
  encodeMessages,
  encodeSnapshotFrame,
  encodeSnapshotReply,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameReader,
  ID_LENGTH_MAX,
  PROTOCOL_VERSION,
  type SnapshotFrame,
} from './codec.ts'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`codec.test.ts: SEED=${SEED}`)

const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs)

function entry(index: number, term: number, data: Uint8Array, type: Entry['type'] = 'normal') {
  return { index, term, type, data }
}

/** ALL_MESSAGES holds one message of every type (two for app: with and without entries). */
const ALL_MESSAGES: readonly Message[] = [
  {
    type: 'app',
    from: 'n1',
    to: 'n2',
    term: 7,
    index: 10,
    logTerm: 6,
    commit: 9,
    entries: [
      entry(11, 6, bytes(1, 2, 3)),
      entry(12, 7, new Uint8Array(0)),
      entry(13, 7, bytes(255), 'conf'),
    ],
  },
  { type: 'app', from: 'n1', to: 'n3', term: 7, index: 0, logTerm: 0, commit: 0, entries: [] },
  {
    type: 'appResp',
    from: 'n2',
    to: 'n1',
    term: 7,
    index: 13,
    reject: true,
    rejectHint: 4,
    logTerm: 3,
  },
  { type: 'heartbeat', from: 'n1', to: 'n2', term: 7, commit: 12, ctx: 'read-1' },
  { type: 'heartbeatResp', from: 'n2', to: 'n1', term: 7, ctx: '' },
  { type: 'vote', from: 'n3', to: 'n1', term: 8, index: 13, logTerm: 7, transfer: true },
  { type: 'preVote', from: 'n3', to: 'n2', term: 9, index: 13, logTerm: 7, transfer: false },
  { type: 'voteResp', from: 'n1', to: 'n3', term: 8, reject: false },
  { type: 'preVoteResp', from: 'n2', to: 'n3', term: 9, reject: true },
  {
    type: 'snap',
    from: 'n1',
    to: 'n4',
    term: 7,
    snapshot: { index: 100, term: 6, conf: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } },
  },
  { type: 'readIndex', from: 'n2', to: 'n1', term: 7, ctx: 'ctx-42' },
  {
    type: 'readIndexResp',
    from: 'n1',
    to: 'n2',
    term: 7,
    ctx: 'ctx-42',
    index: 12,
    reject: false,
  },
  { type: 'timeoutNow', from: 'n1', to: 'n2', term: 7 },
  { type: 'transferLeader', from: 'n3', to: 'n1', term: 7, transferee: 'n2' },
  {
    type: 'prop',
    from: 'n2',
    to: 'n1',
    term: 7,
    data: [new Uint8Array([1, 2, 3]), new Uint8Array(0)],
  },
]

/** payloadOf strips a frame's length prefix, checking it. */
function payloadOf(frame: Uint8Array): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  assert.equal(view.getUint32(0), frame.byteLength - FRAME_HEADER_BYTES)
  return frame.subarray(FRAME_HEADER_BYTES)
}

function assertPlainOwned(data: Uint8Array): void {
  assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype, 'a plain Uint8Array')
  assert.equal(data.byteOffset, 0)
  assert.equal(data.buffer.byteLength, data.byteLength, 'owns its whole buffer')
}

test('every message type round-trips in one batch', () => {
  const decoded = decodeMessages(payloadOf(encodeMessages(ALL_MESSAGES)))
  assert.deepEqual(decoded, ALL_MESSAGES)
  for (const m of decoded) {
    if (m.type === 'app') for (const e of m.entries) assertPlainOwned(e.data)
  }
})

test('decoded bytes do not share memory with the frame', () => {
  const frame = encodeMessages([ALL_MESSAGES[0] as Message])
  const payload = payloadOf(frame)
  const decoded = decodeMessages(payload)
  payload.fill(0)
  const app = decoded[0]
  assert.ok(app !== undefined && app.type === 'app')
  assert.deepEqual(app.entries[0]?.data, bytes(1, 2, 3))
})

test('hello round-trips and other protocol versions are refused', () => {
  const hello = {
    version: PROTOCOL_VERSION,
    clusterName: 'prod',
    id: 'n1',
    purpose: 'snapshot',
  } as const
  assert.deepEqual(decodeHello(payloadOf(encodeHello(hello))), hello)
  const other = encodeHello({ ...hello, version: PROTOCOL_VERSION + 1 })
  assert.throws(() => decodeHello(payloadOf(other)), /protocol version/)
})

test('a hello with a nonce, the challenge and the proof round-trip; wrong sizes are refused', () => {
  const nonce = new Uint8Array(32).fill(7)
  const hello = {
    version: PROTOCOL_VERSION,
    clusterName: 'prod',
    id: 'n1',
    purpose: 'raft',
    nonce,
  } as const
  assert.deepEqual(decodeHello(payloadOf(encodeHello(hello))), hello)
  const challenge = { id: 'n2', nonce, mac: new Uint8Array(32).fill(9) }
  assert.deepEqual(decodeChallenge(payloadOf(encodeChallenge(challenge))), challenge)
  assert.deepEqual(decodeProof(payloadOf(encodeProof(challenge.mac))), challenge.mac)
  const short = new Uint8Array(31)
  assert.throws(
    () => decodeHello(pack(['hello', PROTOCOL_VERSION, 'c', 'a', 'raft', short])),
    /nonce/,
  )
  assert.throws(
    () => decodeHello(pack(['hello', PROTOCOL_VERSION, 'c', 'a', 'raft', 'x'.repeat(32)])),
    FrameError,
  )
  assert.throws(() => decodeChallenge(pack(['helloChallenge', 'n2', nonce, short])), /mac/)
  assert.throws(() => decodeProof(pack(['helloProof', new Uint8Array(33)])), /mac/)
  assert.throws(() => decodeProof(payloadOf(encodeHello(hello))), /unexpected frame kind/)
})

test('snapshot frames and replies round-trip', () => {
  const frames: SnapshotFrame[] = [
    {
      kind: 'meta',
      meta: { index: 5, term: 2, conf: { voters: ['a'], learners: [] } },
      extra: bytes(9, 9),
    },
    {
      kind: 'chunk',
      pairs: [
        { key: bytes(1), value: bytes(2, 3) },
        { key: bytes(4), value: new Uint8Array(0) },
      ],
    },
    { kind: 'chunk', pairs: [] },
    { kind: 'end', pairCount: 2 },
  ]
  for (const f of frames) {
    const decoded = decodeSnapshotFrame(payloadOf(encodeSnapshotFrame(f)))
    assert.deepEqual(decoded, f)
    if (decoded.kind === 'chunk') {
      for (const p of decoded.pairs) {
        assertPlainOwned(p.key)
        assertPlainOwned(p.value)
      }
    }
  }
  assert.deepEqual(decodeSnapshotReply(payloadOf(encodeSnapshotReply({ kind: 'ack' }))), {
    kind: 'ack',
  })
  const long = 'x'.repeat(10_000)
  const reply = decodeSnapshotReply(
    payloadOf(encodeSnapshotReply({ kind: 'error', message: long })),
  )
  assert.equal(reply.kind, 'error')
  assert.ok(reply.kind === 'error' && reply.message.length < long.length, 'long messages are cut')
})

test('a decoder refuses the other decoders’ frames', () => {
  const msgs = payloadOf(encodeMessages(ALL_MESSAGES))
  const hello = payloadOf(
    encodeHello({ version: PROTOCOL_VERSION, clusterName: 'c', id: 'a', purpose: 'raft' }),
  )
  assert.throws(() => decodeHello(msgs), FrameError)
  assert.throws(() => decodeSnapshotFrame(msgs), FrameError)
  assert.throws(() => decodeMessages(hello), FrameError)
  assert.throws(() => decodeSnapshotReply(hello), FrameError)
})

/** messageTuple is a valid app message tuple, to be broken one field at a time. */
function appTuple(): unknown[] {
  return ['app', 'n1', 'n2', 7, 10, 6, 9, [[6, 11, 'normal', bytes(1)]]]
}

test('wrong field types and ranges are refused with a FrameError naming the field', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not an array', { type: 'app' }, /not a tagged array/],
    ['unknown kind', ['msgz', []], /frame kind/],
    ['batch not an array', ['msgs', 'x'], /not an array/],
    ['message not an array', ['msgs', [42]], /not an array/],
    ['unknown message type', ['msgs', [['bogus', 'a', 'b', 1]]], /not a message type/],
    ['prototype key as type', ['msgs', [['constructor', 'a', 'b', 1]]], /not a message type/],
    ['too few fields', ['msgs', [['timeoutNow', 'a', 'b']]], /fields/],
    ['too many fields', ['msgs', [['timeoutNow', 'a', 'b', 1, 2]]], /fields/],
    ['negative term', ['msgs', [['timeoutNow', 'a', 'b', -1]]], /term/],
    ['fractional term', ['msgs', [['timeoutNow', 'a', 'b', 1.5]]], /term/],
    ['unsafe term', ['msgs', [['timeoutNow', 'a', 'b', 2 ** 60]]], /term/],
    ['string term', ['msgs', [['timeoutNow', 'a', 'b', '1']]], /term/],
    ['NaN term', ['msgs', [['timeoutNow', 'a', 'b', NaN]]], /term/],
    ['empty from', ['msgs', [['timeoutNow', '', 'b', 1]]], /from/],
    ['numeric to', ['msgs', [['timeoutNow', 'a', 7, 1]]], /to/],
    ['long id', ['msgs', [['timeoutNow', 'a'.repeat(ID_LENGTH_MAX + 1), 'b', 1]]], /from/],
    ['number reject', ['msgs', [['voteResp', 'a', 'b', 1, 0]]], /reject/],
    ['long ctx', ['msgs', [['readIndex', 'a', 'b', 1, 'c'.repeat(CTX_LENGTH_MAX + 1)]]], /ctx/],
    ['empty transferee', ['msgs', [['transferLeader', 'a', 'b', 1, '']]], /transferee/],
    ['proposal that is not bytes', ['msgs', [['prop', 'a', 'b', 1, ['x']]]], /data\[0\]/],
    ['entries not an array', ['msgs', [appTuple().with(7, {})]], /entries/],
    ['entry type', ['msgs', [appTuple().with(7, [[6, 11, 'weird', bytes(1)]])]], /type/],
    ['entry data string', ['msgs', [appTuple().with(7, [[6, 11, 'normal', 'abc']])]], /data/],
    ['entry index gap', ['msgs', [appTuple().with(7, [[6, 12, 'normal', bytes(1)]])]], /index/],
    ['entry term too new', ['msgs', [appTuple().with(7, [[8, 11, 'normal', bytes(1)]])]], /term/],
    ['entry short', ['msgs', [appTuple().with(7, [[6, 11, 'normal']])]], /fields/],
    ['meta voters', ['msgs', [['snap', 'a', 'b', 1, [1, 1, 'n1', []]]]], /voters/],
    ['meta voter id', ['msgs', [['snap', 'a', 'b', 1, [1, 1, [3], []]]]], /voter/],
    ['map instead of tuple', ['msgs', [new Map([['type', 'app']])]], /not an array/],
  ]
  for (const [name, value, pattern] of cases) {
    assert.throws(
      () => decodeMessages(pack(value)),
      (err: unknown) => err instanceof FrameError && pattern.test(err.message),
      name,
    )
  }
  const helloCases: unknown[] = [
    ['hello'],
    ['hello', PROTOCOL_VERSION, 'c', 'a'],
    ['hello', PROTOCOL_VERSION, 5, 'a', 'raft'],
    ['hello', PROTOCOL_VERSION, 'c', 'a', 'gossip'],
    ['hello', PROTOCOL_VERSION, 'c', '', 'raft'],
    ['hello', '1', 'c', 'a', 'raft'],
  ]
  for (const value of helloCases) assert.throws(() => decodeHello(pack(value)), FrameError)
  const snapCases: unknown[] = [
    ['snapChunk', [bytes(1)]],
    ['snapChunk', [bytes(1), 'v']],
    ['snapChunk', [new Uint8Array(70_000), bytes(1)]],
    ['snapEnd', -1],
    ['snapEnd'],
    ['snapMeta', [1, 1, [], []]],
    ['snapMeta', [1, 1, [], []], 'extra'],
  ]
  for (const value of snapCases) assert.throws(() => decodeSnapshotFrame(pack(value)), FrameError)
  assert.throws(() => decodeSnapshotReply(pack(['snapError', 3])), FrameError)
})

test('the encoder refuses messages the decoder would refuse', () => {
  const bad: Message = { type: 'readIndex', from: 'a', to: 'b', term: 1, ctx: 'x'.repeat(5000) }
  assert.throws(() => encodeMessages([bad]), FrameError)
  const noTo: Message = { type: 'timeoutNow', from: 'a', to: '', term: 1 }
  assert.throws(() => encodeMessages([noTo]), FrameError)
  assert.throws(() => encodeMessages(ALL_MESSAGES, 16), /exceeds/)
})

test('msgpack that is not a whole value is refused', () => {
  const payload = payloadOf(encodeMessages(ALL_MESSAGES))
  for (let cut = 0; cut < payload.byteLength; cut++) {
    assert.throws(() => decodeMessages(payload.subarray(0, cut)), FrameError, `cut at ${cut}`)
  }
  const trailing = new Uint8Array(payload.byteLength + 1)
  trailing.set(payload)
  assert.throws(() => decodeMessages(trailing), FrameError, 'trailing bytes')
})

test(`seeded garbage and mutations never decode into anything but a FrameError (SEED=${SEED})`, () => {
  const rng = new SeededRng(SEED)
  const valid = [
    payloadOf(encodeMessages(ALL_MESSAGES)),
    payloadOf(encodeHello({ version: 1, clusterName: 'c', id: 'a', purpose: 'raft' })),
    payloadOf(
      encodeSnapshotFrame({ kind: 'chunk', pairs: [{ key: bytes(1, 2), value: bytes(3) }] }),
    ),
  ]
  const decoders = [decodeMessages, decodeHello, decodeSnapshotFrame, decodeSnapshotReply]
  let accepted = 0
  for (let i = 0; i < 5000; i++) {
    let input: Uint8Array
    if (rng.chance(0.3)) {
      input = new Uint8Array(rng.range(0, 64))
      for (let j = 0; j < input.length; j++) input[j] = rng.int(256)
    } else {
      input = rng.pick(valid).slice()
      const flips = rng.range(1, 4)
      for (let j = 0; j < flips; j++) input[rng.int(input.length)] = rng.int(256)
    }
    for (const decode of decoders) {
      try {
        decode(input)
        accepted++ // A mutation may still be valid; then it must be a well-formed value.
      } catch (err) {
        assert.ok(err instanceof FrameError, `seed ${SEED} case ${i}: ${String(err)}`)
      }
    }
  }
  assert.ok(accepted < 5000 * decoders.length)
})

test('a mutated valid batch decodes only into validated messages', () => {
  const rng = new SeededRng(SEED + 1)
  const payload = payloadOf(encodeMessages(ALL_MESSAGES))
  for (let i = 0; i < 3000; i++) {
    const input = payload.slice()
    input[rng.int(input.length)] = rng.int(256)
    let msgs: Message[]
    try {
      msgs = decodeMessages(input)
    } catch (err) {
      assert.ok(err instanceof FrameError)
      continue
    }
    for (const m of msgs) {
      assert.ok(Number.isSafeInteger(m.term) && m.term >= 0)
      assert.ok(typeof m.from === 'string' && m.from !== '')
      if (m.type === 'app') for (const e of m.entries) assert.ok(e.data instanceof Uint8Array)
    }
  }
})

test('FrameReader reassembles frames from any chunking', () => {
  const rng = new SeededRng(SEED + 2)
  const frames = ALL_MESSAGES.map((m) => encodeMessages([m]))
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0))
  let at = 0
  for (const f of frames) {
    stream.set(f, at)
    at += f.byteLength
  }
  for (let round = 0; round < 200; round++) {
    const reader = new FrameReader(1024)
    const out: Message[] = []
    let pos = 0
    while (pos < stream.length) {
      const n = rng.range(1, 40)
      reader.push(stream.subarray(pos, pos + n))
      pos += n
      for (let p = reader.next(); p !== undefined; p = reader.next()) {
        out.push(...decodeMessages(p))
      }
    }
    assert.deepEqual(out, ALL_MESSAGES)
    assert.equal(reader.bufferedBytes, 0)
  }
})

test('FrameReader refuses an oversized or empty length before the payload arrives', () => {
  const reader = new FrameReader(1000)
  reader.push(bytes(0, 0, 0x03, 0xe9)) // 1001
  assert.throws(() => reader.next(), /exceeds 1000/)
  const huge = new FrameReader()
  huge.push(bytes(0xff, 0xff, 0xff, 0xff))
  assert.throws(() => huge.next(), FrameError)
  const empty = new FrameReader()
  empty.push(bytes(0, 0, 0, 0))
  assert.throws(() => empty.next(), /empty/)
  const partial = new FrameReader()
  partial.push(bytes(0, 0))
  assert.equal(partial.next(), undefined)
  partial.push(bytes(0, 2, 0x91))
  assert.equal(partial.next(), undefined, 'payload incomplete')
})

test('FrameReader reads many small frames from one big chunk in linear time', () => {
  const one = encodeMessages([ALL_MESSAGES[3] as Message])
  const count = 100_000
  const big = new Uint8Array(one.byteLength * count)
  for (let i = 0; i < count; i++) big.set(one, i * one.byteLength)
  const reader = new FrameReader()
  const started = performance.now()
  reader.push(big)
  let n = 0
  while (reader.next() !== undefined) n++
  assert.equal(n, count)
  assert.ok(performance.now() - started < 2000, 'no quadratic copying')
})
