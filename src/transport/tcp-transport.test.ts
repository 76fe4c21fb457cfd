// Tests of TcpTransport over real sockets on 127.0.0.1: batches between two and three members,
// reconnection after a peer restarts on the same port, peers that send garbage, oversized
// frames, wrong clusters or nothing at all (cut off, counted, everyone else still served),
// snapshot streaming (large, intact, with bounded buffering) and its failures, and messages to
// a down peer (dropped, counted, never thrown). No sleeps: waitFor polls a condition against a
// deadline. Every transport and raw socket is closed in after().
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import net from 'node:net'
import { SeededRng } from '../base/index.ts'
import type { Message, NodeId } from '../raft/index.ts'
import { encodeHello, encodeMessages, PROTOCOL_VERSION } from './codec.ts'
import { IncomingSnapshotStream } from './incoming-snapshot.ts'
import { TcpTransport, type TcpTransportOptions } from './tcp-transport.ts'
import { cleanups, waitFor } from './transport.test-helper.ts'
import type { IncomingSnapshot, KvPair, SnapshotSource } from './transport.ts'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`tcp-transport.test.ts: SEED=${SEED}`)

const CLUSTER = 'test-cluster'

// ---------------------------------------------------------------------------------------------
// Harness

/** Member is a started transport and what it received. */
interface Member {
  readonly id: NodeId
  readonly transport: TcpTransport
  address: string
  readonly received: Message[]
  onSnapshot: (s: IncomingSnapshot) => Promise<void>
}

async function startMember(
  id: NodeId,
  options: Partial<TcpTransportOptions> = {},
): Promise<Member> {
  const transport = new TcpTransport({
    id,
    clusterName: CLUSTER,
    listen: '127.0.0.1:0',
    backoffMinMs: 10,
    backoffMaxMs: 100,
    ...options,
  })
  cleanups.push(() => transport.close())
  const member: Member = {
    id,
    transport,
    address: '',
    received: [],
    onSnapshot: () => Promise.reject(new Error('no snapshot expected')),
  }
  await transport.start({
    onMessages: (from, msgs) => {
      for (const m of msgs) assert.equal(m.from, from)
      member.received.push(...msgs)
    },
    onSnapshot: (s) => member.onSnapshot(s),
  })
  member.address = transport.listenAddress()
  return member
}

/** connectAll gives every member the others' addresses. */
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

function append(from: NodeId, to: NodeId, index: number, data: Uint8Array): Message {
  return {
    type: 'app',
    from,
    to,
    term: 2,
    index: index - 1,
    logTerm: 2,
    commit: index - 1,
    entries: [{ term: 2, index, type: 'normal', data }],
  }
}

/** rawSocket connects a plain socket to address; it is destroyed in after(). */
async function rawSocket(address: string): Promise<net.Socket & { closed: boolean }> {
  const [host, port] = address.split(':') as [string, string]
  const socket = net.connect({ host, port: Number(port) })
  socket.on('error', () => {})
  socket.on('data', () => {})
  cleanups.push(async () => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return socket as net.Socket & { closed: boolean }
}

function hello(id: NodeId, clusterName = CLUSTER, purpose: 'raft' | 'snapshot' = 'raft') {
  return encodeHello({ version: PROTOCOL_VERSION, clusterName, id, purpose })
}

/** freePort returns a port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return address.port
}

// ---------------------------------------------------------------------------------------------
// Messages

test('two members exchange batches of every shape, in order', async () => {
  const [a, b] = await Promise.all([startMember('a'), startMember('b')])
  connectAll([a, b])
  const rng = new SeededRng(SEED)
  const toB: Message[] = []
  const toA: Message[] = []
  for (let i = 1; i <= 500; i++) {
    const data = new Uint8Array(rng.range(0, 300)).map(() => rng.int(256))
    toB.push(i % 3 === 0 ? heartbeat('a', 'b', i) : append('a', 'b', i, data))
    toA.push({
      type: 'appResp',
      from: 'b',
      to: 'a',
      term: 2,
      index: i,
      reject: false,
      rejectHint: 0,
      logTerm: 2,
    })
  }
  // Several send() calls in one turn, and more in later turns.
  a.transport.send(toB.slice(0, 100))
  a.transport.send(toB.slice(100, 250))
  b.transport.send(toA)
  await new Promise((resolve) => setImmediate(resolve))
  a.transport.send(toB.slice(250))
  await waitFor('b to receive 500', () => b.received.length === 500)
  await waitFor('a to receive 500', () => a.received.length === 500)
  assert.deepEqual(b.received, toB)
  assert.deepEqual(a.received, toA)
  const sa = a.transport.stats()
  assert.equal(sa.messagesSent, 500)
  assert.equal(sa.messagesReceived, 500)
  assert.equal(sa.messagesDropped, 0)
  assert.equal(sa.connects, 1)
  assert.ok(sa.bytesSent > 0 && sa.bytesReceived > 0)
  assert.deepEqual(a.transport.unreachable(), [])
})

test('three members exchange batches all to all', async () => {
  const members = await Promise.all(['x', 'y', 'z'].map((id) => startMember(id)))
  connectAll(members)
  for (const m of members) {
    const batch: Message[] = []
    for (const o of members) {
      if (o === m) continue
      for (let i = 1; i <= 50; i++) batch.push(heartbeat(m.id, o.id, i))
    }
    m.transport.send(batch)
  }
  for (const m of members) {
    await waitFor(`${m.id} to receive 100`, () => m.received.length === 100)
    for (const o of members) {
      if (o === m) continue
      const fromO = m.received.filter((x) => x.from === o.id)
      assert.deepEqual(
        fromO.map((x) => (x.type === 'heartbeat' ? x.commit : -1)),
        Array.from({ length: 50 }, (_, i) => i + 1),
        'per-peer order kept',
      )
    }
  }
})

test('after a peer restarts on the same port, messages flow again', async () => {
  const a = await startMember('a')
  const b1 = await startMember('b')
  connectAll([a, b1])
  a.transport.send([heartbeat('a', 'b', 1)])
  await waitFor('first delivery', () => b1.received.length === 1)

  await b1.transport.close()
  await waitFor('b to be unreachable', () => {
    a.transport.send([heartbeat('a', 'b', 2)]) // Dropped or lost: b is gone.
    return a.transport.unreachable().includes('b')
  })

  const b2 = await startMember('b', { listen: b1.address })
  assert.equal(b2.address, b1.address)
  let n = 2
  await waitFor('delivery after the restart', () => {
    a.transport.send([heartbeat('a', 'b', ++n)])
    return b2.received.length > 0
  })
  assert.deepEqual(a.transport.unreachable(), [])
  assert.ok(a.transport.stats().connects >= 2)
  assert.ok(a.transport.stats().messagesDropped > 0)
})

test('garbage, wrong clusters, oversized frames and silence cut the sender off; real peers go on', async () => {
  const logged: string[] = []
  const b = await startMember('b', {
    maxFrameBytes: 1024 * 1024,
    helloTimeoutMs: 200,
    logger: (event) => logged.push(event),
  })
  const a = await startMember('a')
  connectAll([a, b])
  let n = 0
  const roundTrip = async (what: string): Promise<void> => {
    const want = b.received.length + 1
    a.transport.send([heartbeat('a', 'b', ++n)])
    await waitFor(`a real message after ${what}`, () => b.received.length === want)
  }
  await roundTrip('start')

  const rng = new SeededRng(SEED + 1)
  const attacks: [string, (s: net.Socket) => void][] = [
    ['random garbage', (s) => s.write(new Uint8Array(256).map(() => rng.int(256)))],
    [
      'garbage after hello',
      (s) => s.write(Buffer.concat([hello('m'), Buffer.from('!!!!nonsense')])),
    ],
    ['a wrong cluster name', (s) => s.write(hello('m', 'other-cluster'))],
    [
      'an oversized frame',
      (s) => s.write(Buffer.concat([hello('m'), Buffer.from([0x7f, 0, 0, 0])])),
    ],
    ['a hello from our own id', (s) => s.write(hello('b'))],
    ['messages as the hello', (s) => s.write(encodeMessages([heartbeat('m', 'b', 1)]))],
    ['silence', () => {}],
  ]
  for (const [what, attack] of attacks) {
    const bad = await rawSocket(b.address)
    const before = b.transport.stats().badFrames
    const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()))
    attack(bad)
    await closed
    assert.equal(b.transport.stats().badFrames, before + 1, what)
    await roundTrip(what)
  }
  assert.ok(logged.includes('bad_peer'))
})

test('messages not from the hello’s sender or not to us are dropped', async () => {
  const b = await startMember('b')
  const raw = await rawSocket(b.address)
  raw.write(hello('m'))
  raw.write(
    encodeMessages([heartbeat('m', 'b', 1), heartbeat('x', 'b', 2), heartbeat('m', 'c', 3)]),
  )
  await waitFor('the valid message', () => b.received.length === 1)
  assert.deepEqual(b.received, [heartbeat('m', 'b', 1)])
  await waitFor('drops counted', () => b.transport.stats().messagesDropped === 2)
  assert.equal(b.transport.stats().badFrames, 0)
})

test('a message to a peer with no address goes back over that peer’s own connection', async () => {
  // r knows b; b does not know r (b lags: r joined after the configuration b applied, say).
  const r = await startMember('r')
  const b = await startMember('b')
  r.transport.setPeers(new Map([['b', b.address]]))
  r.transport.send([heartbeat('r', 'b', 1)])
  await waitFor('r’s message at b', () => b.received.length === 1)
  const notice: Message = { type: 'heartbeatResp', from: 'b', to: 'r', term: 3, ctx: '' }
  b.transport.send([notice])
  await waitFor('the reply at r', () => r.received.length === 1)
  assert.deepEqual(r.received, [notice])
  assert.equal(b.transport.stats().messagesDropped, 0)
  // Nobody else can be reached that way, and garbage written back cuts the link off.
  b.transport.send([{ ...notice, to: 'stranger' }])
  assert.equal(b.transport.stats().messagesDropped, 1)
  const accepted = new Set<net.Socket>()
  const badPeer = net.createServer((socket) => {
    accepted.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => accepted.delete(socket))
    socket.write(Buffer.from([0, 0, 0, 3, 1, 2, 3]))
  })
  cleanups.push(
    () =>
      new Promise((resolve) => {
        for (const socket of accepted) socket.destroy()
        badPeer.close(() => resolve())
      }),
  )
  await new Promise<void>((resolve) => badPeer.listen(0, '127.0.0.1', resolve))
  const port = (badPeer.address() as net.AddressInfo).port
  r.transport.setPeers(new Map([['bad', `127.0.0.1:${port}`]]))
  r.transport.send([heartbeat('r', 'bad', 1)])
  await waitFor('the bad reply to be counted', () => r.transport.stats().badFrames >= 1)
  assert.equal(r.received.length, 1)
  r.transport.setPeers(new Map())
})

test('messages to a down peer are dropped, counted and never thrown', async () => {
  const a = await startMember('a', { queueMessagesMax: 10 })
  a.transport.setPeers(new Map([['down', `127.0.0.1:${await freePort()}`]]))
  // The first send dials; while dialling, the queue holds 10 and the rest are dropped.
  a.transport.send(Array.from({ length: 50 }, (_, i) => heartbeat('a', 'down', i)))
  assert.equal(a.transport.stats().messagesDropped, 40)
  await waitFor('the peer to be unreachable', () => a.transport.unreachable().includes('down'))
  await waitFor(
    'the queued ones to be dropped too',
    () => a.transport.stats().messagesDropped === 50,
  )
  // In backoff, sends are dropped at once.
  a.transport.send([heartbeat('a', 'down', 99)])
  assert.ok(a.transport.stats().messagesDropped >= 50)
  // A peer with no address at all.
  a.transport.send([heartbeat('a', 'nobody', 1)])
  assert.equal(a.transport.stats().messagesSent, 0)
})

test('setPeers closes the connection to a peer whose address changed', async () => {
  const a = await startMember('a')
  const b1 = await startMember('b')
  const b2 = await startMember('b')
  a.transport.setPeers(new Map([['b', b1.address]]))
  a.transport.send([heartbeat('a', 'b', 1)])
  await waitFor('delivery to the first address', () => b1.received.length === 1)
  a.transport.setPeers(new Map([['b', b2.address]]))
  a.transport.send([heartbeat('a', 'b', 2)])
  await waitFor('delivery to the new address', () => b2.received.length === 1)
  assert.equal(b1.received.length, 1)
  a.transport.setPeers(new Map())
  a.transport.send([heartbeat('a', 'b', 3)])
  assert.equal(a.transport.stats().messagesDropped, 1)
})

// ---------------------------------------------------------------------------------------------
// Snapshots

/** seededSource yields totalBytes of seeded pairs and records how far it got. */
function seededSource(seed: number, totalBytes: number) {
  const state = { produced: 0, closed: false, hash: createHash('sha256'), pairs: 0 }
  const source: SnapshotSource = {
    meta: { index: 1000, term: 3, conf: { voters: ['a', 'b'], learners: [] } },
    extra: new Uint8Array([1, 2, 3]),
    chunks: async function* (chunkBytes: number) {
      const rng = new SeededRng(seed)
      while (state.produced < totalBytes) {
        const chunk: KvPair[] = []
        let bytes = 0
        while (bytes < chunkBytes && state.produced + bytes < totalBytes) {
          const key = new TextEncoder().encode(`key-${state.pairs + chunk.length}`)
          const value = new Uint8Array(rng.range(100, 20_000))
          for (let i = 0; i < value.length; i += 997) value[i] = rng.int(256)
          chunk.push({ key, value })
          bytes += key.byteLength + value.byteLength
        }
        for (const p of chunk) state.hash.update(p.key).update(p.value)
        state.produced += bytes
        state.pairs += chunk.length
        yield chunk
      }
    },
    close: () => {
      state.closed = true
    },
  }
  return { source, state }
}

test('a 24 MiB snapshot streams intact, with the receiver’s buffer bounded', async () => {
  const bufferBytesMax = 1024 * 1024
  const [a, b] = await Promise.all([
    startMember('a', { snapshotChunkBytes: 64 * 1024 }),
    startMember('b', { snapshotBufferBytesMax: bufferBytesMax }),
  ])
  connectAll([a, b])
  const total = 24 * 1024 * 1024
  const { source, state } = seededSource(SEED + 2, total)
  let consumed = 0
  let leadMax = 0
  let bufferedMax = 0
  let received: { hash: string; pairs: number; meta: unknown; extra: Uint8Array } | undefined
  b.onSnapshot = async (snap) => {
    const hash = createHash('sha256')
    let pairs = 0
    assert.ok(snap instanceof IncomingSnapshotStream)
    for await (const chunk of snap.chunks()) {
      bufferedMax = Math.max(bufferedMax, snap.bufferedBytes)
      for (const p of chunk) {
        hash.update(p.key).update(p.value)
        consumed += p.key.byteLength + p.value.byteLength
      }
      pairs += chunk.length
      leadMax = Math.max(leadMax, state.produced - consumed)
      // A consumer slower than the network: yield to the event loop after every chunk.
      await new Promise((resolve) => setImmediate(resolve))
    }
    received = { hash: hash.digest('hex'), pairs, meta: snap.meta, extra: snap.extra }
  }
  await a.transport.sendSnapshot('b', source)
  assert.ok(state.closed, 'source closed')
  assert.ok(received !== undefined)
  assert.equal(received.hash, state.hash.digest('hex'))
  assert.equal(received.pairs, state.pairs)
  assert.deepEqual(received.meta, source.meta)
  assert.deepEqual(received.extra, source.extra)
  assert.equal(a.transport.stats().snapshotsSent, 1)
  await waitFor('receiver stats', () => b.transport.stats().snapshotsReceived === 1)
  // What the producer is ahead of the consumer: our buffer, plus the sockets' kernel buffers
  // and one chunk in flight. Far less than the snapshot: the stream did not buffer it whole.
  console.log(`snapshot: producer lead over consumer at most ${(leadMax / 2 ** 20).toFixed(1)} MiB`)
  assert.ok(leadMax < total / 2, `lead ${leadMax} bytes`)
  // The receiver pauses its socket at the bound; a frame or two may land past it.
  assert.ok(bufferedMax <= bufferBytesMax + 256 * 1024, `buffered ${bufferedMax} bytes`)
})

test('a snapshot the receiver fails rejects sendSnapshot, and the source is closed', async () => {
  const [a, b] = await Promise.all([startMember('a'), startMember('b')])
  connectAll([a, b])
  b.onSnapshot = async (snap) => {
    for await (const _chunk of snap.chunks()) throw new Error('disk full')
  }
  const { source, state } = seededSource(SEED + 3, 4 * 1024 * 1024)
  await assert.rejects(a.transport.sendSnapshot('b', source), /disk full/)
  assert.ok(state.closed)
  assert.equal(a.transport.stats().snapshotsSent, 0)

  // The receiver resolving without reading to the end is a failure too.
  b.onSnapshot = async () => {}
  const second = seededSource(SEED + 4, 1024 * 1024)
  await assert.rejects(a.transport.sendSnapshot('b', second.source), /not read to its end/)
  assert.ok(second.state.closed)

  // A sender that stops midway breaks the receiver's iteration.
  const third = seededSource(SEED + 5, 1024 * 1024)
  let receiverError: unknown
  b.onSnapshot = async (snap) => {
    try {
      for await (const _chunk of snap.chunks()) {
        // keep reading
      }
    } catch (err) {
      receiverError = err
      throw err
    }
  }
  const failing: SnapshotSource = {
    ...third.source,
    chunks: async function* (chunkBytes) {
      for await (const c of third.source.chunks(chunkBytes)) {
        yield c
        throw new Error('source broke')
      }
    },
  }
  await assert.rejects(a.transport.sendSnapshot('b', failing), /source broke/)
  assert.ok(third.state.closed)
  await waitFor('the receiver to see the break', () => receiverError !== undefined)
})

test('sendSnapshot rejects for an unknown or down peer, and after close', async () => {
  const a = await startMember('a', { dialTimeoutMs: 500 })
  const first = seededSource(1, 1000)
  await assert.rejects(a.transport.sendSnapshot('nobody', first.source), /no address/)
  assert.ok(first.state.closed)
  a.transport.setPeers(new Map([['down', `127.0.0.1:${await freePort()}`]]))
  const second = seededSource(2, 1000)
  await assert.rejects(a.transport.sendSnapshot('down', second.source))
  assert.ok(second.state.closed)
  await a.transport.close()
  const third = seededSource(3, 1000)
  await assert.rejects(a.transport.sendSnapshot('down', third.source), /closed/)
  assert.ok(third.state.closed)
  a.transport.send([heartbeat('a', 'down', 1)]) // Dropped, not thrown.
})

test('a transport that never started closes at once; a bad peer address is just unreachable', async () => {
  const idle = new TcpTransport({ id: 'i', clusterName: CLUSTER, listen: '127.0.0.1:0' })
  idle.setPeers(new Map([['p', 'not an address']]))
  idle.send([heartbeat('i', 'p', 1)])
  assert.equal(idle.stats().messagesDropped, 1)
  assert.deepEqual(idle.unreachable(), ['p'])
  await idle.close()
  assert.throws(() => new TcpTransport({ id: 'i', clusterName: CLUSTER, listen: 'nope' }))
})

test('close() ends live connections and an in-flight snapshot', async () => {
  const [a, b] = await Promise.all([startMember('a'), startMember('b')])
  connectAll([a, b])
  a.transport.send([heartbeat('a', 'b', 1)])
  b.transport.send([heartbeat('b', 'a', 1)])
  await waitFor('both connected', () => a.received.length === 1 && b.received.length === 1)
  let started = false
  b.onSnapshot = async (snap) => {
    started = true
    for await (const _chunk of snap.chunks()) {
      // Never done before close.
    }
  }
  const { source, state } = seededSource(SEED + 6, 64 * 1024 * 1024)
  const sending = a.transport.sendSnapshot('b', source)
  const outcome = sending.then(
    () => 'resolved',
    (err: unknown) => String(err),
  )
  await waitFor('the snapshot to start', () => started)
  await a.transport.close()
  assert.match(await outcome, /closed|reset|destroyed|Snapshot/i)
  assert.ok(state.closed)
  await b.transport.close()
})
