// The transport's wire format, and the one place network bytes are validated. A frame is a
// 4-byte big-endian payload length followed by a msgpack payload. Every payload is an array
// whose first element names the frame's kind; the other elements sit at fixed positions
// (tuples, not maps: compact, fast, and no object keys to worry about):
//
//   hello      ['hello', version, clusterName, id, purpose, nonce?]  first frame of a connection
//   challenge  ['helloChallenge', id, nonce, mac]                 server -> client (cluster secret)
//   proof      ['helloProof', mac]                                client -> server (cluster secret)
//   messages   ['msgs', [message, ...]]                           a batch of Raft messages
//   message    [type, from, to, term, ...fields of that type]     field order: encodeMessage
//   entry      [term, index, 'normal' | 'conf', data]
//   snap meta  ['snapMeta', [index, term, voters, learners], extra]
//   snap chunk ['snapChunk', [key, value, key, value, ...]]
//   snap end   ['snapEnd', pairCount]
//   snap ack   ['snapAck']                                         receiver -> sender
//   snap error ['snapError', message]                             receiver -> sender
//
// Decoders check every field's type and range and return the raft package's types, or throw a
// FrameError; bytes they return are fresh Uint8Arrays owned by the caller. Connections, peers
// and what a valid frame means for a connection's state are tcp-transport.ts's business.
import { Packr, Unpackr } from 'msgpackr'
import type { ConfState, Entry, Message, NodeId, SnapshotMeta } from '../raft/index.ts'
import type { KvPair } from './transport.ts'

/** PROTOCOL_VERSION is the version a hello frame carries; peers with another one are refused. */
export const PROTOCOL_VERSION = 2

/** FRAME_HEADER_BYTES is the size of a frame's length prefix. */
export const FRAME_HEADER_BYTES = 4

/** FRAME_BYTES_MAX_DEFAULT is the default bound on a frame's payload: 64 MiB. */
export const FRAME_BYTES_MAX_DEFAULT = 64 * 1024 * 1024

/** ID_LENGTH_MAX bounds node ids and the cluster name, in UTF-16 code units. */
export const ID_LENGTH_MAX = 256

/** CTX_LENGTH_MAX bounds the ctx of heartbeats and read-index messages. */
export const CTX_LENGTH_MAX = 1024

/** HANDSHAKE_FRAME_BYTES_MAX bounds each frame a connection may send before its handshake is
 * accepted (hello, challenge, proof): a few hundred bytes are enough. */
export const HANDSHAKE_FRAME_BYTES_MAX = 4096

/** NONCE_BYTES is the size of a handshake nonce. */
export const NONCE_BYTES = 32

/** MAC_BYTES is the size of a handshake HMAC-SHA256. */
export const MAC_BYTES = 32

/** ERROR_LENGTH_MAX bounds the message of a snapshot error frame; longer ones are cut. */
export const ERROR_LENGTH_MAX = 4096

/** KEY_BYTES_MAX bounds a snapshot key (the API's keys are at most 1 KiB). */
export const KEY_BYTES_MAX = 64 * 1024

/** MESSAGES_PER_FRAME_MAX bounds the messages in one frame. */
export const MESSAGES_PER_FRAME_MAX = 65_536

/** ENTRIES_PER_MESSAGE_MAX bounds the entries in one append message. */
export const ENTRIES_PER_MESSAGE_MAX = 1 << 20

/** CONF_NODES_MAX bounds the voters (and, separately, the learners) of a configuration. */
export const CONF_NODES_MAX = 1024

/** PAIRS_PER_CHUNK_MAX bounds the key/value pairs in one snapshot chunk frame. */
export const PAIRS_PER_CHUNK_MAX = 1 << 20

/** FrameError reports bytes that are not a valid frame: the connection they came on is bad. */
export class FrameError extends Error {
  override readonly name = 'FrameError'
}

/** Purpose tells what a connection carries: Raft messages, or one snapshot stream. */
export type Purpose = 'raft' | 'snapshot'

/** Hello is the first frame on every connection: who is calling, in which cluster, and why. */
export interface Hello {
  readonly version: number
  readonly clusterName: string
  readonly id: NodeId
  readonly purpose: Purpose
  /** nonce is the caller's challenge when it holds a cluster secret (NONCE_BYTES). */
  readonly nonce?: Uint8Array
}

/** HelloChallenge is the server's answer to a hello with a nonce: its id, its own nonce, and
 * its proof of the cluster secret (see handshake.ts). */
export interface HelloChallenge {
  readonly id: NodeId
  readonly nonce: Uint8Array
  readonly mac: Uint8Array
}

/** SnapshotFrame is one frame of a snapshot stream, sender to receiver. */
export type SnapshotFrame =
  | { readonly kind: 'meta'; readonly meta: SnapshotMeta; readonly extra: Uint8Array }
  | { readonly kind: 'chunk'; readonly pairs: readonly KvPair[] }
  | { readonly kind: 'end'; readonly pairCount: number }

/** SnapshotReply is the receiver's verdict on a snapshot stream. */
export type SnapshotReply =
  { readonly kind: 'ack' } | { readonly kind: 'error'; readonly message: string }

// Encoding options: no records, no extensions for typed arrays (a Uint8Array is msgpack bin).
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
})
// Decoding options: copyBuffers makes every bin a fresh Uint8Array, not a view of the frame.
const unpackr = new Unpackr({
  useRecords: false,
  structuredClone: false,
  bundleStrings: false,
  copyBuffers: true,
  int64AsType: 'number',
  mapsAsObjects: true,
})

// ---------------------------------------------------------------------------------------------
// Framing

/**
 * encodeFrame packs value and prefixes its length. It throws a FrameError when the payload
 * exceeds maxFrameBytes. The result is a buffer of its own, safe to hand to socket.write.
 */
function encodeFrame(value: unknown, maxFrameBytes: number): Buffer {
  const payload = packr.pack(value)
  if (payload.byteLength > maxFrameBytes) {
    throw new FrameError(`frame of ${payload.byteLength} bytes exceeds ${maxFrameBytes}`)
  }
  // Copy: msgpackr returns a view of a buffer it keeps writing later frames into.
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength)
  frame.writeUInt32BE(payload.byteLength, 0)
  frame.set(payload, FRAME_HEADER_BYTES)
  return frame
}

/** unpackPayload decodes msgpack, turning any decoder failure into a FrameError. */
function unpackPayload(payload: Uint8Array): unknown {
  if (payload.byteLength === 0) throw new FrameError('empty frame')
  // A plain Uint8Array view, so that the bins msgpackr slices off it are plain Uint8Arrays.
  const view =
    payload.constructor === Uint8Array
      ? payload
      : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  try {
    return unpackr.unpack(view) as unknown
  } catch (err) {
    throw new FrameError(`bad msgpack: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/**
 * FrameReader cuts a byte stream into frame payloads. push() appends a socket chunk; next()
 * returns the next complete payload, or undefined until more bytes arrive. Each byte is copied
 * at most once (a payload inside one chunk is a view of it, a payload spanning chunks is copied
 * once into its own buffer), so reading is linear in the bytes received. A length above
 * maxFrameBytes throws a FrameError before anything is allocated for it; after a FrameError
 * the stream is unusable and the connection should be dropped.
 */
export class FrameReader {
  // The unread chunks are chunks[head..]; consumed ones are dropped in bulk, not one by one.
  private chunks: Uint8Array[] = []
  private head = 0
  // Invariant: 0 <= headOffset < chunks[head].byteLength whenever a chunk is unread.
  private headOffset = 0
  // Invariant: buffered === sum of chunk lengths minus headOffset.
  private buffered = 0
  // The payload length of the frame being read, once its header is in; -1 before.
  private pendingLength = -1

  /** maxFrameBytes may be raised once a connection's handshake is accepted. */
  constructor(public maxFrameBytes: number = FRAME_BYTES_MAX_DEFAULT) {}

  /** bufferedBytes is how many received bytes are not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** push appends a chunk of the stream. The reader keeps a reference to it: do not reuse it. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.byteLength
  }

  /** next returns the next whole frame's payload, or undefined if it has not all arrived. */
  next(): Uint8Array | undefined {
    if (this.pendingLength < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return undefined
      const header = this.take(FRAME_HEADER_BYTES)
      const length =
        (((header[0] ?? 0) << 24) |
          ((header[1] ?? 0) << 16) |
          ((header[2] ?? 0) << 8) |
          (header[3] ?? 0)) >>>
        0
      if (length > this.maxFrameBytes) {
        throw new FrameError(`frame length ${length} exceeds ${this.maxFrameBytes}`)
      }
      if (length === 0) throw new FrameError('empty frame')
      this.pendingLength = length
    }
    if (this.buffered < this.pendingLength) return undefined
    const payload = this.take(this.pendingLength)
    this.pendingLength = -1
    return payload
  }

  /** take removes n buffered bytes (n <= buffered): a view if they sit in one chunk. */
  private take(n: number): Uint8Array {
    const head = this.chunks[this.head]
    if (head === undefined) throw new FrameError('reader underflow')
    const available = head.byteLength - this.headOffset
    if (n <= available) {
      const view = head.subarray(this.headOffset, this.headOffset + n)
      this.consume(n)
      return view
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[this.head]
      if (chunk === undefined) throw new FrameError('reader underflow')
      const count = Math.min(n - filled, chunk.byteLength - this.headOffset)
      out.set(chunk.subarray(this.headOffset, this.headOffset + count), filled)
      filled += count
      this.consume(count)
    }
    return out
  }

  /** consume drops n bytes from the head chunk (n <= what the head chunk has left). */
  private consume(n: number): void {
    const head = this.chunks[this.head]
    if (head === undefined) return
    this.headOffset += n
    this.buffered -= n
    if (this.headOffset === head.byteLength) {
      this.head++
      this.headOffset = 0
      if (this.head === this.chunks.length) {
        this.chunks = []
        this.head = 0
      } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
        // Amortized O(1) per chunk: copy the tail only once half the list is consumed.
        this.chunks = this.chunks.slice(this.head)
        this.head = 0
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Field validation

function fail(what: string, message: string): never {
  throw new FrameError(`${what}: ${message}`)
}

/** within prefixes a FrameError with where it happened (built only on failure: the hot path
 * pays for no labels). */
function within(err: unknown, where: string): unknown {
  return err instanceof FrameError ? new FrameError(`${where} ${err.message}`) : err
}

function tuple(v: unknown, what: string, lengthMin: number, lengthMax = lengthMin): unknown[] {
  if (!Array.isArray(v)) fail(what, 'not an array')
  if (v.length < lengthMin || v.length > lengthMax) {
    fail(
      what,
      `has ${v.length} fields, want ${lengthMin === lengthMax ? lengthMin : `${lengthMin}-${lengthMax}`}`,
    )
  }
  return v
}

function list(v: unknown, what: string, lengthMax: number): unknown[] {
  if (!Array.isArray(v)) fail(what, 'not an array')
  if (v.length > lengthMax) fail(what, `has ${v.length} elements, over ${lengthMax}`)
  return v
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(what, 'not a non-negative safe integer')
  }
  return v
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(what, 'not a boolean')
  return v
}

function str(v: unknown, what: string, lengthMax: number): string {
  if (typeof v !== 'string') fail(what, 'not a string')
  if (v.length > lengthMax) fail(what, `longer than ${lengthMax}`)
  return v
}

function nodeId(v: unknown, what: string): NodeId {
  const s = str(v, what, ID_LENGTH_MAX)
  if (s === '') fail(what, 'empty node id')
  return s
}

function bytes(v: unknown, what: string, lengthMax: number): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(what, 'not bytes')
  if (v.byteLength > lengthMax) fail(what, `longer than ${lengthMax} bytes`)
  // Hand out only plain Uint8Arrays that own their memory; copy anything else.
  if (v.constructor === Uint8Array && v.byteOffset === 0 && v.buffer.byteLength === v.byteLength) {
    return v
  }
  return new Uint8Array(v)
}

function kind(payload: Uint8Array, expected: readonly string[], what: string): unknown[] {
  const v = unpackPayload(payload)
  if (!Array.isArray(v) || v.length === 0) fail(what, 'not a tagged array')
  const tag = v[0]
  if (typeof tag !== 'string' || !expected.includes(tag)) {
    fail(
      what,
      `unexpected frame kind ${typeof tag === 'string' ? JSON.stringify(tag.slice(0, 32)) : typeof tag}`,
    )
  }
  return v
}

// ---------------------------------------------------------------------------------------------
// Hello

/** encodeHello builds a connection's first frame. */
export function encodeHello(hello: Hello, maxFrameBytes = FRAME_BYTES_MAX_DEFAULT): Buffer {
  const fields: unknown[] = ['hello', hello.version, hello.clusterName, hello.id, hello.purpose]
  if (hello.nonce !== undefined) fields.push(hello.nonce)
  return encodeFrame(fields, maxFrameBytes)
}

/** decodeHello validates a hello payload; a version other than PROTOCOL_VERSION is refused. */
export function decodeHello(payload: Uint8Array): Hello {
  const v = kind(payload, ['hello'], 'hello')
  const version = uint(v[1], 'hello version')
  if (version !== PROTOCOL_VERSION) {
    fail('hello', `protocol version ${version}, want ${PROTOCOL_VERSION}`)
  }
  tuple(v, 'hello', 5, 6)
  const clusterName = str(v[2], 'hello cluster name', ID_LENGTH_MAX)
  const id = nodeId(v[3], 'hello id')
  const purpose = v[4]
  if (purpose !== 'raft' && purpose !== 'snapshot') fail('hello purpose', 'not raft or snapshot')
  if (v.length === 5) return { version, clusterName, id, purpose }
  return { version, clusterName, id, purpose, nonce: fixedBytes(v[5], 'hello nonce', NONCE_BYTES) }
}

function fixedBytes(v: unknown, what: string, length: number): Uint8Array {
  const b = bytes(v, what, length)
  if (b.byteLength !== length) fail(what, `not ${length} bytes`)
  return b
}

/** encodeChallenge builds the server's answer to a hello with a nonce. */
export function encodeChallenge(c: HelloChallenge): Buffer {
  return encodeFrame(['helloChallenge', c.id, c.nonce, c.mac], HANDSHAKE_FRAME_BYTES_MAX)
}

/** decodeChallenge validates a challenge payload. */
export function decodeChallenge(payload: Uint8Array): HelloChallenge {
  const v = tuple(kind(payload, ['helloChallenge'], 'challenge'), 'challenge', 4)
  return {
    id: nodeId(v[1], 'challenge id'),
    nonce: fixedBytes(v[2], 'challenge nonce', NONCE_BYTES),
    mac: fixedBytes(v[3], 'challenge mac', MAC_BYTES),
  }
}

/** encodeProof builds the client's answer to a challenge. */
export function encodeProof(mac: Uint8Array): Buffer {
  return encodeFrame(['helloProof', mac], HANDSHAKE_FRAME_BYTES_MAX)
}

/** decodeProof validates a proof payload and returns its mac. */
export function decodeProof(payload: Uint8Array): Uint8Array {
  const v = tuple(kind(payload, ['helloProof'], 'proof'), 'proof', 2)
  return fixedBytes(v[1], 'proof mac', MAC_BYTES)
}

// ---------------------------------------------------------------------------------------------
// Raft messages

function encodeMeta(meta: SnapshotMeta): unknown[] {
  return [meta.index, meta.term, meta.conf.voters, meta.conf.learners]
}

function decodeMeta(v: unknown, what: string): SnapshotMeta {
  const t = tuple(v, what, 4)
  const voters = list(t[2], `${what} voters`, CONF_NODES_MAX).map((x) => nodeId(x, `${what} voter`))
  const learners = list(t[3], `${what} learners`, CONF_NODES_MAX).map((x) =>
    nodeId(x, `${what} learner`),
  )
  const conf: ConfState = { voters, learners }
  return { index: uint(t[0], `${what} index`), term: uint(t[1], `${what} term`), conf }
}

function checkId(id: string, what: string): void {
  if (id === '' || id.length > ID_LENGTH_MAX) fail(what, 'empty or too long node id')
}

/**
 * checkOutgoing refuses a message the receiving decoder would refuse for its strings (the
 * core's numbers are trusted), so that one bad message costs itself, not its whole frame.
 */
function checkOutgoing(m: Message): void {
  checkId(m.from, `${m.type} from`)
  checkId(m.to, `${m.type} to`)
  switch (m.type) {
    case 'heartbeat':
    case 'heartbeatResp':
    case 'readIndex':
    case 'readIndexResp':
      if (m.ctx.length > CTX_LENGTH_MAX) fail(`${m.type} ctx`, `longer than ${CTX_LENGTH_MAX}`)
      break
    case 'transferLeader':
      checkId(m.transferee, 'transferLeader transferee')
      break
    case 'snap':
      for (const id of m.snapshot.conf.voters) checkId(id, 'snap voter')
      for (const id of m.snapshot.conf.learners) checkId(id, 'snap learner')
      break
    default:
      break
  }
}

/** encodeMessage turns a message into its tuple; fields follow the envelope in this order. */
function encodeMessage(m: Message): unknown[] {
  checkOutgoing(m)
  switch (m.type) {
    case 'app':
      return [
        m.type,
        m.from,
        m.to,
        m.term,
        m.index,
        m.logTerm,
        m.commit,
        m.entries.map((e) => [e.term, e.index, e.type, e.data]),
      ]
    case 'appResp':
      return [m.type, m.from, m.to, m.term, m.index, m.reject, m.rejectHint, m.logTerm]
    case 'heartbeat':
      return [m.type, m.from, m.to, m.term, m.commit, m.ctx]
    case 'heartbeatResp':
      return [m.type, m.from, m.to, m.term, m.ctx]
    case 'vote':
    case 'preVote':
      return [m.type, m.from, m.to, m.term, m.index, m.logTerm, m.transfer]
    case 'voteResp':
    case 'preVoteResp':
      return [m.type, m.from, m.to, m.term, m.reject]
    case 'snap':
      return [m.type, m.from, m.to, m.term, encodeMeta(m.snapshot)]
    case 'readIndex':
      return [m.type, m.from, m.to, m.term, m.ctx]
    case 'readIndexResp':
      return [m.type, m.from, m.to, m.term, m.ctx, m.index, m.reject]
    case 'timeoutNow':
      return [m.type, m.from, m.to, m.term]
    case 'transferLeader':
      return [m.type, m.from, m.to, m.term, m.transferee]
    case 'prop':
      return [m.type, m.from, m.to, m.term, m.data]
  }
}

// The number of fields of each message type's tuple, envelope included.
const MESSAGE_FIELDS: Readonly<Record<Message['type'], number>> = {
  app: 8,
  appResp: 8,
  heartbeat: 6,
  heartbeatResp: 5,
  vote: 7,
  preVote: 7,
  voteResp: 5,
  preVoteResp: 5,
  snap: 5,
  readIndex: 5,
  readIndexResp: 7,
  timeoutNow: 4,
  transferLeader: 5,
  prop: 5,
}

function isMessageType(v: unknown): v is Message['type'] {
  return typeof v === 'string' && Object.hasOwn(MESSAGE_FIELDS, v)
}

function decodeEntries(v: unknown, prevIndex: number, term: number): Entry[] {
  const raw = list(v, 'entries', ENTRIES_PER_MESSAGE_MAX)
  const entries: Entry[] = new Array<Entry>(raw.length)
  for (let i = 0; i < raw.length; i++) {
    try {
      entries[i] = decodeEntry(raw[i], prevIndex + 1 + i, term)
    } catch (err) {
      throw within(err, `entries[${i}]`)
    }
  }
  return entries
}

function decodeEntry(v: unknown, wantIndex: number, messageTerm: number): Entry {
  const t = tuple(v, 'entry', 4)
  const term = uint(t[0], 'term')
  const index = uint(t[1], 'index')
  // Raft §5.3: an append carries consecutive entries right after its index, none newer than
  // the leader's term.
  if (index !== wantIndex) fail('index', `${index}, want ${wantIndex}`)
  if (term > messageTerm) fail('term', `${term} above the message term ${messageTerm}`)
  const type = t[2]
  if (type !== 'normal' && type !== 'conf') fail('type', 'not normal or conf')
  return { term, index, type, data: bytes(t[3], 'data', Infinity) }
}

/** decodeMessage validates one message tuple. */
function decodeMessage(v: unknown): Message {
  if (!Array.isArray(v) || v.length === 0) fail('message', 'not an array')
  const type = v[0]
  if (!isMessageType(type)) fail('type', 'not a message type')
  const t = tuple(v, type, MESSAGE_FIELDS[type])
  const from = nodeId(t[1], 'from')
  const to = nodeId(t[2], 'to')
  const term = uint(t[3], 'term')
  switch (type) {
    case 'app': {
      const index = uint(t[4], 'index')
      return {
        type,
        from,
        to,
        term,
        index,
        logTerm: uint(t[5], 'logTerm'),
        commit: uint(t[6], 'commit'),
        entries: decodeEntries(t[7], index, term),
      }
    }
    case 'appResp':
      return {
        type,
        from,
        to,
        term,
        index: uint(t[4], 'index'),
        reject: bool(t[5], 'reject'),
        rejectHint: uint(t[6], 'rejectHint'),
        logTerm: uint(t[7], 'logTerm'),
      }
    case 'heartbeat':
      return {
        type,
        from,
        to,
        term,
        commit: uint(t[4], 'commit'),
        ctx: str(t[5], 'ctx', CTX_LENGTH_MAX),
      }
    case 'heartbeatResp':
    case 'readIndex':
      return { type, from, to, term, ctx: str(t[4], 'ctx', CTX_LENGTH_MAX) }
    case 'vote':
    case 'preVote':
      return {
        type,
        from,
        to,
        term,
        index: uint(t[4], 'index'),
        logTerm: uint(t[5], 'logTerm'),
        transfer: bool(t[6], 'transfer'),
      }
    case 'voteResp':
    case 'preVoteResp':
      return { type, from, to, term, reject: bool(t[4], 'reject') }
    case 'snap':
      return { type, from, to, term, snapshot: decodeMeta(t[4], 'snapshot') }
    case 'readIndexResp':
      return {
        type,
        from,
        to,
        term,
        ctx: str(t[4], 'ctx', CTX_LENGTH_MAX),
        index: uint(t[5], 'index'),
        reject: bool(t[6], 'reject'),
      }
    case 'timeoutNow':
      return { type, from, to, term }
    case 'transferLeader':
      return { type, from, to, term, transferee: nodeId(t[4], 'transferee') }
    case 'prop':
      return {
        type,
        from,
        to,
        term,
        data: list(t[4], 'data', ENTRIES_PER_MESSAGE_MAX).map((d, i) =>
          bytes(d, `data[${i}]`, Infinity),
        ),
      }
  }
}

/**
 * encodeMessages builds one frame holding a batch of messages. It throws a FrameError when the
 * batch is too large for maxFrameBytes or too long for MESSAGES_PER_FRAME_MAX.
 */
export function encodeMessages(
  msgs: readonly Message[],
  maxFrameBytes = FRAME_BYTES_MAX_DEFAULT,
): Buffer {
  if (msgs.length > MESSAGES_PER_FRAME_MAX) {
    throw new FrameError(`batch of ${msgs.length} messages exceeds ${MESSAGES_PER_FRAME_MAX}`)
  }
  return encodeFrame(['msgs', msgs.map(encodeMessage)], maxFrameBytes)
}

/** decodeMessages validates a batch payload and returns its messages. */
export function decodeMessages(payload: Uint8Array): Message[] {
  const v = tuple(kind(payload, ['msgs'], 'messages'), 'messages', 2)
  const raw = list(v[1], 'messages batch', MESSAGES_PER_FRAME_MAX)
  const msgs: Message[] = new Array<Message>(raw.length)
  for (let i = 0; i < raw.length; i++) {
    try {
      msgs[i] = decodeMessage(raw[i])
    } catch (err) {
      throw within(err, `message[${i}]`)
    }
  }
  return msgs
}

/**
 * messageBytesEstimate is a rough upper bound of a message's encoded size, used to cut
 * batches before encoding them.
 */
export function messageBytesEstimate(m: Message): number {
  let n = 64 + m.from.length * 3 + m.to.length * 3
  switch (m.type) {
    case 'app':
      for (const e of m.entries) n += e.data.byteLength + 32
      break
    case 'heartbeat':
    case 'heartbeatResp':
    case 'readIndex':
    case 'readIndexResp':
      n += m.ctx.length * 3
      break
    case 'snap':
      for (const id of m.snapshot.conf.voters) n += id.length * 3 + 5
      for (const id of m.snapshot.conf.learners) n += id.length * 3 + 5
      break
    case 'transferLeader':
      n += m.transferee.length * 3
      break
    case 'prop':
      for (const d of m.data) n += d.byteLength + 8
      break
    default:
      break
  }
  return n
}

// ---------------------------------------------------------------------------------------------
// Snapshot streams

/** encodeSnapshotFrame builds one frame of a snapshot stream (sender to receiver). */
export function encodeSnapshotFrame(
  frame: SnapshotFrame,
  maxFrameBytes = FRAME_BYTES_MAX_DEFAULT,
): Buffer {
  switch (frame.kind) {
    case 'meta':
      return encodeFrame(['snapMeta', encodeMeta(frame.meta), frame.extra], maxFrameBytes)
    case 'chunk': {
      if (frame.pairs.length > PAIRS_PER_CHUNK_MAX) {
        throw new FrameError(`chunk of ${frame.pairs.length} pairs exceeds ${PAIRS_PER_CHUNK_MAX}`)
      }
      const flat: Uint8Array[] = new Array<Uint8Array>(frame.pairs.length * 2)
      for (let i = 0; i < frame.pairs.length; i++) {
        const pair = frame.pairs[i]
        if (pair === undefined) continue
        flat[2 * i] = pair.key
        flat[2 * i + 1] = pair.value
      }
      return encodeFrame(['snapChunk', flat], maxFrameBytes)
    }
    case 'end':
      return encodeFrame(['snapEnd', frame.pairCount], maxFrameBytes)
  }
}

/** decodeSnapshotFrame validates one frame of a snapshot stream. */
export function decodeSnapshotFrame(payload: Uint8Array): SnapshotFrame {
  const v = kind(payload, ['snapMeta', 'snapChunk', 'snapEnd'], 'snapshot frame')
  switch (v[0]) {
    case 'snapMeta': {
      const t = tuple(v, 'snapshot meta frame', 3)
      return {
        kind: 'meta',
        meta: decodeMeta(t[1], 'snapshot meta'),
        extra: bytes(t[2], 'snapshot extra', Infinity),
      }
    }
    case 'snapChunk': {
      const t = tuple(v, 'snapshot chunk frame', 2)
      const flat = list(t[1], 'snapshot chunk', PAIRS_PER_CHUNK_MAX * 2)
      if (flat.length % 2 !== 0) fail('snapshot chunk', 'odd number of keys and values')
      const pairs: KvPair[] = new Array<KvPair>(flat.length / 2)
      for (let i = 0; i < pairs.length; i++) {
        try {
          pairs[i] = {
            key: bytes(flat[2 * i], 'key', KEY_BYTES_MAX),
            value: bytes(flat[2 * i + 1], 'value', Infinity),
          }
        } catch (err) {
          throw within(err, `snapshot chunk pair[${i}]`)
        }
      }
      return { kind: 'chunk', pairs }
    }
    default: {
      const t = tuple(v, 'snapshot end frame', 2)
      return { kind: 'end', pairCount: uint(t[1], 'snapshot end pair count') }
    }
  }
}

/** encodeSnapshotReply builds the receiver's verdict frame; long messages are cut. */
export function encodeSnapshotReply(reply: SnapshotReply): Buffer {
  return reply.kind === 'ack'
    ? encodeFrame(['snapAck'], FRAME_BYTES_MAX_DEFAULT)
    : encodeFrame(['snapError', reply.message.slice(0, ERROR_LENGTH_MAX)], FRAME_BYTES_MAX_DEFAULT)
}

/** decodeSnapshotReply validates the receiver's verdict frame. */
export function decodeSnapshotReply(payload: Uint8Array): SnapshotReply {
  const v = kind(payload, ['snapAck', 'snapError'], 'snapshot reply')
  if (v[0] === 'snapAck') {
    tuple(v, 'snapshot ack', 1)
    return { kind: 'ack' }
  }
  const t = tuple(v, 'snapshot error', 2)
  return { kind: 'error', message: str(t[1], 'snapshot error message', ERROR_LENGTH_MAX) }
}
