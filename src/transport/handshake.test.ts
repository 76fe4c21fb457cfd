// Tests of the transport's handshake over real sockets on 127.0.0.1: members with the same
// cluster secret talk and stream snapshots; another secret, or a secret on one side only, is
// refused by both ends; a replayed or reflected proof is refused; before its handshake a
// connection may send only small frames, for a short while, and only so many connections may
// be in their handshake at once; TLS with mutual certificates works, and a peer from another
// CA or without a certificate is refused. No sleeps: waitFor polls against a deadline.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { SeededRng } from '../base/index.ts'
import type { Message, NodeId } from '../raft/index.ts'
import { Secret, type TlsConfig } from '../security/index.ts'
import { makeCerts } from '../../test/e2e/certs.ts'
import {
  decodeChallenge,
  encodeHello,
  encodeMessages,
  encodeProof,
  FrameReader,
  PROTOCOL_VERSION,
} from './codec.ts'
import { ClientHandshake } from './handshake.ts'
import { TcpTransport, type TcpTransportOptions } from './tcp-transport.ts'
import { cleanups, waitFor } from './transport.test-helper.ts'
import type { KvPair, SnapshotSource } from './transport.ts'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`handshake.test.ts: SEED=${SEED}`)

const CLUSTER = 'test-cluster'
const SECRET = new Secret('the-cluster-secret-0123456789', 'test')
const OTHER = new Secret('another-secret-9876543210abcdef', 'test')

interface Member {
  readonly id: NodeId
  readonly transport: TcpTransport
  readonly address: string
  readonly received: Message[]
  readonly snapshots: number[]
  readonly logged: { event: string; fields: Record<string, unknown> }[]
}

async function startMember(id: NodeId, options: Partial<TcpTransportOptions> = {}) {
  const logged: Member['logged'] = []
  const transport = new TcpTransport({
    id,
    clusterName: CLUSTER,
    listen: '127.0.0.1:0',
    backoffMinMs: 10,
    backoffMaxMs: 100,
    logger: (event, fields) => logged.push({ event, fields: fields as Record<string, unknown> }),
    ...options,
  })
  cleanups.push(() => transport.close())
  const received: Message[] = []
  const snapshots: number[] = []
  await transport.start({
    onMessages: (_from, msgs) => received.push(...msgs),
    onSnapshot: async (snap) => {
      for await (const chunk of snap.chunks()) void chunk
      snapshots.push(snap.meta.index)
    },
  })
  const member: Member = {
    id,
    transport,
    address: transport.listenAddress(),
    received,
    snapshots,
    logged,
  }
  return member
}

function connectAll(members: readonly Member[]): void {
  for (const m of members) {
    m.transport.setPeers(
      new Map(members.filter((o) => o !== m).map((o) => [o.id, o.address] as const)),
    )
  }
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return { type: 'heartbeat', from, to, term: 1, commit, ctx: '' }
}

function smallSource(index: number): SnapshotSource & { closed: boolean } {
  const pairs: KvPair[] = [{ key: new Uint8Array([1]), value: new Uint8Array(1000) }]
  return {
    meta: { index, term: 1, conf: { voters: ['a', 'b'], learners: [] } },
    extra: new Uint8Array([9]),
    closed: false,
    async *chunks() {
      yield pairs
    },
    close() {
      this.closed = true
    },
  }
}

/** exchange checks that a and b reach each other both ways. */
async function exchange(a: Member, b: Member, n: number): Promise<void> {
  const [wantA, wantB] = [a.received.length + 1, b.received.length + 1]
  a.transport.send([heartbeat(a.id, b.id, n)])
  b.transport.send([heartbeat(b.id, a.id, n)])
  await waitFor(
    `${a.id} <-> ${b.id}`,
    () => a.received.length === wantA && b.received.length === wantB,
  )
}

function refusals(m: Member, text: string): number {
  return m.logged.filter((l) => l.event === 'bad_peer' && String(l.fields.error).includes(text))
    .length
}

/** rawSocket connects a plain socket; frames it receives land in frames. */
async function rawSocket(address: string, localAddress?: string) {
  const [host, port] = address.split(':') as [string, string]
  const socket = net.connect({
    host,
    port: Number(port),
    ...(localAddress ? { localAddress } : {}),
  })
  const reader = new FrameReader(4096)
  const frames: Uint8Array[] = []
  socket.on('error', () => {})
  socket.on('data', (chunk) => {
    reader.push(chunk)
    for (let p = reader.next(); p !== undefined; p = reader.next()) frames.push(p)
  })
  let closed = false
  socket.once('close', () => {
    closed = true
  })
  cleanups.push(async () => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, frames, isClosed: () => closed }
}

// ---------------------------------------------------------------------------------------------
// Cluster secret

test('members with the same secret exchange messages and snapshots', async () => {
  const [a, b] = await Promise.all([
    startMember('a', { clusterSecret: SECRET }),
    startMember('b', { clusterSecret: SECRET }),
  ])
  connectAll([a, b])
  await exchange(a, b, 1)
  const source = smallSource(7)
  await a.transport.sendSnapshot('b', source)
  assert.ok(source.closed)
  await waitFor('snapshot received', () => b.snapshots.includes(7))
  assert.equal(a.transport.stats().badFrames + b.transport.stats().badFrames, 0)
})

test('another secret, or a secret on one side only, is refused by both ends', async () => {
  const a = await startMember('a', { clusterSecret: SECRET })
  const b = await startMember('b', { clusterSecret: OTHER })
  const c = await startMember('c')
  connectAll([a, b, c])
  const deadline = Date.now() + 10_000
  // Keep sending until every refusal was seen: each end refuses each other end.
  while (!(
    refusals(a, 'the server does not hold our cluster secret') > 0 &&
    refusals(b, 'the server does not hold our cluster secret') > 0 &&
    refusals(a, 'offers no cluster secret') > 0 &&
    refusals(b, 'offers no cluster secret') > 0 &&
    refusals(c, 'offers a cluster secret; this member has none') >= 2
  )) {
    assert.ok(Date.now() < deadline, `refusals: ${JSON.stringify([a, b, c].map((m) => m.logged))}`)
    for (const m of [a, b, c]) {
      m.transport.send([a, b, c].filter((o) => o !== m).map((o) => heartbeat(m.id, o.id, 1)))
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.deepEqual([a.received, b.received, c.received], [[], [], []])
  await assert.rejects(a.transport.sendSnapshot('b', smallSource(1)), /cluster secret|closed/)
  await assert.rejects(a.transport.sendSnapshot('c', smallSource(1)), /closed/)
  await assert.rejects(c.transport.sendSnapshot('a', smallSource(1)), /closed/)
  assert.deepEqual([a.snapshots, b.snapshots, c.snapshots], [[], [], []])
  // The logs name the refusal, never the secret.
  const text = JSON.stringify([a.logged, b.logged, c.logged])
  assert.ok(!text.includes(SECRET.reveal()) && !text.includes(OTHER.reveal()))
})

test('a replayed or reflected proof is refused; a fresh one is accepted', async () => {
  const b = await startMember('b', { clusterSecret: SECRET })
  // A legitimate handshake by hand, recorded.
  const good = await rawSocket(b.address)
  const hs = new ClientHandshake(
    { clusterName: CLUSTER, id: 'm', secret: SECRET },
    'b',
    'raft',
    good.socket,
  )
  const helloFrame = hs.hello()
  good.socket.write(helloFrame)
  await waitFor('challenge', () => good.frames.length === 1)
  const proof = hs.onFrame(good.frames[0] as Uint8Array)
  good.socket.write(proof)
  good.socket.write(encodeMessages([heartbeat('m', 'b', 5)]))
  await waitFor('message after a fresh proof', () => b.received.length === 1)

  // The same hello and proof again: the server's nonce is new, so the proof is stale.
  const replay = await rawSocket(b.address)
  replay.socket.write(helloFrame)
  await waitFor('challenge', () => replay.frames.length === 1)
  replay.socket.write(proof)
  replay.socket.write(encodeMessages([heartbeat('m', 'b', 6)]))
  await waitFor('replay dropped', replay.isClosed)
  assert.equal(refusals(b, 'wrong cluster secret'), 1)

  // The server's own MAC handed back as the proof: roles differ, refused.
  const reflect = await rawSocket(b.address)
  reflect.socket.write(helloFrame)
  await waitFor('challenge', () => reflect.frames.length === 1)
  reflect.socket.write(encodeProof(decodeChallenge(reflect.frames[0] as Uint8Array).mac))
  await waitFor('reflection dropped', reflect.isClosed)
  assert.equal(refusals(b, 'wrong cluster secret'), 2)

  // A client that holds no secret but sends a proof-shaped frame is refused the same way.
  const guess = await rawSocket(b.address)
  guess.socket.write(helloFrame)
  await waitFor('challenge', () => guess.frames.length === 1)
  guess.socket.write(encodeProof(new Uint8Array(32)))
  await waitFor('guess dropped', guess.isClosed)
  assert.equal(b.received.length, 1)
})

// ---------------------------------------------------------------------------------------------
// Before the handshake

test('before its handshake a connection sends small frames, in time, or is dropped', async () => {
  const b = await startMember('b', { clusterSecret: SECRET, helloTimeoutMs: 300 })
  const a = await startMember('a', { clusterSecret: SECRET })
  connectAll([a, b])
  let n = 0
  await exchange(a, b, ++n)
  const rng = new SeededRng(SEED)
  const nonceHello = encodeHello({
    version: PROTOCOL_VERSION,
    clusterName: CLUSTER,
    id: 'm',
    purpose: 'raft',
    nonce: new Uint8Array(32),
  })
  const header = (length: number): Buffer => {
    const h = Buffer.alloc(4)
    h.writeUInt32BE(length)
    return h
  }
  const attacks: [string, (s: net.Socket) => void, string][] = [
    ['garbage', (s) => s.write(new Uint8Array(512).map(() => rng.int(256))), ''],
    ['a 5000-byte first frame', (s) => s.write(header(5000)), 'exceeds 4096'],
    ['a huge length prefix', (s) => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff])), 'exceeds'],
    ['messages as the first frame', (s) => s.write(encodeMessages([heartbeat('m', 'b', 1)])), ''],
    ['a frame of an unknown kind', (s) => s.write(encodeProof(new Uint8Array(32))), 'unexpected'],
    [
      'a hello without a nonce',
      (s) =>
        s.write(
          encodeHello({
            version: PROTOCOL_VERSION,
            clusterName: CLUSTER,
            id: 'm',
            purpose: 'raft',
          }),
        ),
      'no cluster secret',
    ],
    [
      'a big frame instead of the proof',
      (s) => s.write(Buffer.concat([nonceHello, header(1 << 20)])),
      'exceeds 4096',
    ],
    [
      'messages instead of the proof',
      (s) => s.write(Buffer.concat([nonceHello, encodeMessages([heartbeat('m', 'b', 1)])])),
      'unexpected',
    ],
    ['silence', () => {}, 'no handshake within 300 ms'],
    ['a hello, then silence', (s) => s.write(nonceHello), 'no handshake within 300 ms'],
  ]
  for (const [what, attack, reason] of attacks) {
    const bad = await rawSocket(b.address)
    const before = b.transport.stats().badFrames
    const logged = b.logged.length
    attack(bad.socket)
    await waitFor(`${what}: dropped`, bad.isClosed)
    assert.equal(b.transport.stats().badFrames, before + 1, what)
    const line = b.logged.slice(logged).find((l) => l.event === 'bad_peer')
    assert.ok(
      line !== undefined && String(line.fields.error).includes(reason),
      `${what}: ${JSON.stringify(line)}`,
    )
    await exchange(a, b, ++n)
  }
  assert.equal(b.received.length, n)
  assert.equal(b.transport.handshakesPending(), 0)
})

test('connections in their handshake are capped; over the cap they are closed at once', async () => {
  const b = await startMember('b', { handshakesPendingMax: 4, helloTimeoutMs: 30_000 })
  const a = await startMember('a')
  const silent = []
  for (let i = 0; i < 4; i++) silent.push(await rawSocket(b.address))
  await waitFor('4 pending', () => b.transport.handshakesPending() === 4)
  const over = await rawSocket(b.address)
  await waitFor('the 5th dropped', over.isClosed)
  assert.equal(refusals(b, 'over 4 connections in their handshake'), 1)
  assert.ok(silent.every((s) => !s.isClosed()))
  // A real peer gets in once a slot frees up.
  silent[0]?.socket.destroy()
  await waitFor('3 pending', () => b.transport.handshakesPending() === 3)
  connectAll([a, b])
  a.transport.send([heartbeat('a', 'b', 1)])
  await waitFor('a real peer served', () => b.received.length === 1)
})

test('one host cannot take every handshake slot', async () => {
  const b = await startMember('b', { handshakesPendingPerHostMax: 2, helloTimeoutMs: 30_000 })
  const silent = [await rawSocket(b.address), await rawSocket(b.address)]
  await waitFor('2 pending', () => b.transport.handshakesPending() === 2)
  const third = await rawSocket(b.address)
  await waitFor('the 3rd from that host dropped', third.isClosed)
  assert.equal(refusals(b, 'over 2 connections in their handshake from one host'), 1)
  // Another host (another loopback address) still gets a slot.
  const elsewhere = await rawSocket(b.address, '127.0.0.2')
  await waitFor('3 pending', () => b.transport.handshakesPending() === 3)
  assert.ok(!elsewhere.isClosed() && silent.every((s) => !s.isClosed()))
})

// ---------------------------------------------------------------------------------------------
// TLS

test('TLS with mutual certificates: members talk; another CA, no certificate, plain TCP refused', async () => {
  const certs = makeCerts('oncekv-transport')
  const other = makeCerts('oncekv-other')
  const config = (c: typeof certs): TlsConfig => ({
    cert: readFileSync(c.cert),
    key: readFileSync(c.key),
    ca: readFileSync(c.ca),
    peerMtls: true,
  })
  const [a, b] = await Promise.all([
    startMember('a', { tls: config(certs), clusterSecret: SECRET }),
    startMember('b', { tls: config(certs), clusterSecret: SECRET }),
  ])
  const c = await startMember('c', { tls: config(other), clusterSecret: SECRET })
  connectAll([a, b, c])
  await exchange(a, b, 1)
  const source = smallSource(3)
  await a.transport.sendSnapshot('b', source)
  await waitFor('snapshot over TLS', () => b.snapshots.includes(3))

  // c's certificate is from another CA: neither side trusts the other.
  c.transport.send([heartbeat('c', 'a', 1)])
  a.transport.send([heartbeat('a', 'c', 1)])
  await waitFor('TLS refusals', () => refusals(a, 'TLS') > 0 && refusals(c, 'TLS') > 0)
  await assert.rejects(c.transport.sendSnapshot('a', smallSource(4)))
  assert.equal(c.received.length, 0)
  assert.ok(!a.received.some((m) => m.from === 'c'))

  // A TLS client with the right CA but no certificate of its own.
  const noCert = tls.connect({
    host: '127.0.0.1',
    port: Number(a.address.split(':')[1]),
    ca: readFileSync(certs.ca),
  })
  noCert.on('error', () => {})
  cleanups.push(async () => {
    noCert.destroy()
  })
  await new Promise<void>((resolve) => noCert.once('close', () => resolve()))
  // Plain TCP to a TLS listener.
  const plain = await rawSocket(a.address)
  plain.socket.write(encodeMessages([heartbeat('m', 'a', 1)]))
  await waitFor('plain TCP dropped', plain.isClosed)
  await exchange(a, b, 2)
})
