// A rough throughput measurement of TcpTransport on loopback: one member sends 1-entry
// appends (100-byte entries) to another, in send() calls of a few sizes, keeping at most a
// window of messages in flight so that none is dropped. Run:
//   node --import tsx src/transport/tcp-transport.bench.ts [messages]
import type { Message } from '../raft/index.ts'
import { TcpTransport } from './tcp-transport.ts'

const TOTAL = Number(process.argv[2] ?? 200_000)
const WINDOW = 4096

async function run(perSend: number): Promise<number> {
  let received = 0
  const a = new TcpTransport({ id: 'a', clusterName: 'bench', listen: '127.0.0.1:0' })
  const b = new TcpTransport({ id: 'b', clusterName: 'bench', listen: '127.0.0.1:0' })
  const noSnapshots = (): Promise<void> => Promise.reject(new Error('no snapshots'))
  await a.start({ onMessages: () => {}, onSnapshot: noSnapshots })
  await b.start({
    onMessages: (_from, msgs) => {
      received += msgs.length
    },
    onSnapshot: noSnapshots,
  })
  try {
    a.setPeers(new Map([['b', b.listenAddress()]]))
    const data = new Uint8Array(100).fill(7)
    const started = performance.now()
    let sent = 0
    while (sent < TOTAL) {
      if (sent - received >= WINDOW) {
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      const batch: Message[] = []
      for (let i = 0; i < perSend && sent < TOTAL; i++, sent++) {
        const index = sent + 1
        batch.push({
          type: 'app',
          from: 'a',
          to: 'b',
          term: 1,
          index: index - 1,
          logTerm: 1,
          commit: index - 1,
          entries: [{ term: 1, index, type: 'normal', data }],
        })
      }
      a.send(batch)
      // Yield now and then, as a real Ready loop would between Readys.
      if ((sent / perSend) % 8 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    while (received < TOTAL) await new Promise((resolve) => setImmediate(resolve))
    const seconds = (performance.now() - started) / 1000
    const dropped = a.stats().messagesDropped
    if (dropped > 0) throw new Error(`${dropped} messages dropped`)
    return TOTAL / seconds
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

for (const perSend of [1, 16, 64, 256]) {
  const rate = await run(perSend)
  console.log(
    `${TOTAL} 1-entry appends, ${perSend} per send(): ${Math.round(rate).toLocaleString('en')} messages/s`,
  )
}
