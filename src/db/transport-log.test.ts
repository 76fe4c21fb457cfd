// The transport's events at their log levels, and connection events rate-limited per peer.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import pino from 'pino'
import { transportLogger } from './transport-log.ts'

function capture(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l))
      done()
    },
  })
  return { lines, logger: pino({ level: 'info' }, sink) }
}

describe('transportLogger', () => {
  it('logs connections at info, failures at warn, and per-message noise not at all at info', () => {
    const { lines, logger } = capture()
    const log = transportLogger(logger)
    log('peer_connected', { peer: 'n2' })
    log('dial_failed', { peer: 'n3', error: 'refused' })
    log('snapshot_sent', { peer: 'n2', index: 7 })
    log('some_detail', { peer: 'n2' })
    assert.deepEqual(
      lines.map((l) => [l.event, l.level]),
      [
        ['peer_connected', 30],
        ['dial_failed', 40],
        ['snapshot_sent', 30],
      ],
    )
  })

  it('rate-limits a peer that reconnects in a loop, and counts what it left out', () => {
    const { lines, logger } = capture()
    let t = 0
    const log = transportLogger(logger, () => t)
    for (let i = 0; i < 50; i++) {
      log('peer_connected', { peer: 'n2' })
      log('peer_disconnected', { peer: 'n2' })
      t += 100
    }
    log('peer_connected', { peer: 'n3' })
    assert.equal(lines.filter((l) => l.peer === 'n2').length, 4)
    assert.equal(lines.filter((l) => l.peer === 'n3').length, 1)
    t += 15_000
    log('peer_connected', { peer: 'n2' })
    const last = lines[lines.length - 1]
    assert.equal(last?.peer, 'n2')
    assert.equal(last?.suppressed, 96)
  })

  it('rate-limits refused connections per remote host, with a bounded memory of hosts', () => {
    const { lines, logger } = capture()
    const log = transportLogger(logger, () => 0)
    for (let i = 0; i < 100; i++) log('bad_peer', { remote: '10.0.0.1', port: 40000 + i })
    assert.equal(lines.length, 4)
    // Ever new hosts: each is logged, the oldest budgets are forgotten (no unbounded growth).
    for (let i = 0; i < 3000; i++) log('bad_peer', { remote: `10.1.${i >> 8}.${i & 255}` })
    assert.equal(lines.length, 3004)
    log('bad_peer', { remote: '10.0.0.1' })
    assert.equal(lines.length, 3005, 'a forgotten host starts with a fresh budget')
  })
})
