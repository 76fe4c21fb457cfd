// Unit tests of the dashboard's pure parts (no browser): the sparkline series, their SVG
// paths, the reconnect backoff, message parsing and number formatting. The page itself is
// tested in a browser (test/e2e).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backoffMs } from './backoff.ts'
import * as fmt from './format.ts'
import { parseLiveMessage, type AdminHistory, type AdminOverview } from './protocol.ts'
import { appendOverview, fromHistory, WINDOW_MS } from './series.ts'
import { sparkPaths } from './spark-path.ts'

const T0 = 1_800_000_000_000

function overview(time: number, ops: number, urls: string[]): AdminOverview {
  return {
    type: 'overview',
    time,
    leader: 'n1',
    term: 2,
    cluster: { writes_per_s: 0, reads_per_s: ops, ops_per_s: ops, hit_ratio: 0.5 },
    nodes: urls.map((url) => ({
      kind: 'cache',
      id: url,
      url,
      health: 'up',
      leader: false,
      suffrage: null,
      last_seen_ms: 0,
      lag: null,
      rates: { reads_per_s: ops, writes_per_s: 0, ops_per_s: ops, hit_ratio: null },
      stats: null,
      down_since: null,
      last_stats: null,
    })),
  }
}

function history(times: number[], url: string): AdminHistory {
  const points = times.map((time) => ({ time, ops_per_s: 1, hit_ratio: null }))
  return { type: 'history', cluster: points, nodes: { [url]: points } }
}

describe('series', () => {
  it('takes the history, then skips the overview that is already its last point', () => {
    const s = fromHistory(history([T0, T0 + 1000], 'a'))
    assert.equal(s.cluster.length, 2)
    const same = appendOverview(s, overview(T0 + 1000, 5, ['a']))
    assert.equal(same, s)
    const next = appendOverview(s, overview(T0 + 2000, 5, ['a']))
    assert.deepEqual(
      next.cluster.map((p) => p.ops_per_s),
      [1, 1, 5],
    )
    assert.equal(next.nodes.a?.length, 3)
  })

  it('keeps five minutes and drops nodes no longer listed', () => {
    let s = fromHistory(history([T0], 'a'))
    for (let i = 1; i <= 400; i++) s = appendOverview(s, overview(T0 + i * 1000, i, ['b']))
    assert.ok((s.cluster[0]?.time ?? 0) >= s.lastTime - WINDOW_MS)
    assert.equal(s.cluster.length, WINDOW_MS / 1000 + 1)
    assert.deepEqual(Object.keys(s.nodes), ['b'])
  })

  it("keeps the page's older points in front of a restarted admin's shorter history", () => {
    let s = fromHistory(history([T0, T0 + 1000], 'a'))
    s = appendOverview(s, overview(T0 + 2000, 7, ['a']))
    const after = fromHistory(history([T0 + 10_000, T0 + 11_000], 'a'), s)
    assert.deepEqual(
      after.cluster.map((p) => p.time - T0),
      [0, 1000, 2000, 10_000, 11_000],
    )
    assert.equal(after.nodes.a?.length, 5)
    assert.equal(after.lastTime, T0 + 11_000)
  })
})

describe('sparkPaths', () => {
  const opts = { width: 100, height: 20, end: T0 + 10_000, windowMs: 10_000, gapMs: 3000 }

  it('places points by time, scaled to the largest value', () => {
    const p = sparkPaths(
      [
        { time: T0, value: 0 },
        { time: T0 + 10_000, value: 4 },
      ],
      { ...opts, gapMs: 20_000, max: undefined },
    )
    assert.equal(p.line, 'M2.0,18.0L97.0,2.0')
    assert.deepEqual(p.last, { x: 97, y: 2 })
    assert.match(p.area, /^M2\.0,20\.0L.*Z$/)
  })

  it('breaks the line at nulls and at gaps in time, and shows a lone point as a dash', () => {
    const p = sparkPaths(
      [
        { time: T0 + 1000, value: 1 },
        { time: T0 + 2000, value: 1 },
        { time: T0 + 3000, value: null },
        { time: T0 + 4000, value: 1 },
        { time: T0 + 9000, value: 1 },
      ],
      { ...opts, max: 1 },
    )
    assert.equal(p.line.split('M').length - 1, 3)
    assert.ok(p.line.includes('L'))
  })

  it('leaves out points before the window and draws nothing without points', () => {
    const p = sparkPaths([{ time: T0 - 1, value: 3 }], { ...opts, max: undefined })
    assert.equal(p.line, '')
    assert.equal(p.last, undefined)
  })
})

describe('backoffMs', () => {
  it('doubles from 0.5 s up to 10 s, within the upper half of each cap', () => {
    assert.equal(backoffMs(1, 0.999999), 500)
    assert.equal(backoffMs(1, 0), 250)
    assert.equal(backoffMs(3, 0.999999), 2000)
    assert.equal(backoffMs(50, 0.999999), 10_000)
    assert.equal(backoffMs(50, 0), 5000)
  })
})

describe('parseLiveMessage', () => {
  it('accepts history and overview messages and refuses anything else', () => {
    assert.equal(parseLiveMessage(JSON.stringify(history([T0], 'a')))?.type, 'history')
    assert.equal(parseLiveMessage(JSON.stringify(overview(T0, 1, [])))?.type, 'overview')
    assert.equal(parseLiveMessage('not json'), undefined)
    assert.equal(parseLiveMessage('{"type":"overview"}'), undefined)
    assert.equal(parseLiveMessage('[1]'), undefined)
  })
})

describe('format', () => {
  it('formats counts, rates, ratios, sizes and durations briefly', () => {
    assert.equal(fmt.count(1234567), '1,234,567')
    assert.equal(fmt.rate(12.34), '12.3')
    assert.equal(fmt.rate(1234.5), '1,235')
    assert.equal(fmt.rate(123_456), '123.5k')
    assert.equal(fmt.percent(0.9731), '97.3 %')
    assert.equal(fmt.percent(null), '–')
    assert.equal(fmt.bytes(512), '512 B')
    assert.equal(fmt.bytes(1536), '1.5 KiB')
    assert.equal(fmt.bytes(64 * 1024 * 1024), '64 MiB')
    assert.equal(fmt.millis(12), '12 ms')
    assert.equal(fmt.millis(4200), '4.2 s')
    assert.equal(fmt.seconds(185), '3 min 5 s')
    assert.equal(fmt.seconds(7800), '2 h 10 min')
    assert.equal(fmt.lastContact(-1), 'never')
    assert.equal(fmt.hostOf('http://127.0.0.1:5551'), '127.0.0.1:5551')
  })
})
