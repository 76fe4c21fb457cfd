// The database fill against real HTTP servers on loopback that answer like database members
// (200 bytes, 404 code 1002, errors, slowness), so failover, hedging and the authority of
// a 404 are tested over real sockets. The timings are far apart (a member that hangs is
// asked for 60 s, a slow one answers in half a second against one that answers at once),
// so a machine busy enough to delay every answer by a few hundred milliseconds does not
// change what is asserted.
import assert from 'node:assert/strict'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { after, describe, it } from 'node:test'
import { UnavailableError } from '../protocol/index.ts'
import { DbLoader } from './db-loader.ts'

type Behaviour = (key: string, res: ServerResponse) => void

interface Member {
  url: string
  hits: string[]
  behave: Behaviour
  server: Server
}

const servers: Server[] = []
after(() => {
  for (const s of servers) s.close()
})

const value =
  (v: string): Behaviour =>
  (_k, res) =>
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(v)
const notFound: Behaviour = (k, res) =>
  res
    .writeHead(404, { 'content-type': 'application/json' })
    .end(JSON.stringify({ code: 1002, error: 'key_not_found', message: `key "${k}" not found` }))
const fail =
  (status: number): Behaviour =>
  (_k, res) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end('{"code":1005}')
const slow =
  (ms: number, then: Behaviour): Behaviour =>
  (k, res) => {
    const t = setTimeout(() => then(k, res), ms)
    res.on('close', () => clearTimeout(t))
  }

async function member(behave: Behaviour): Promise<Member> {
  const m = { hits: [] as string[], behave } as Member
  m.server = createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '').replace(/^\/keys\//, ''))
    m.hits.push(key)
    m.behave(key, res)
  })
  servers.push(m.server)
  await new Promise<void>((r) => m.server.listen(0, '127.0.0.1', r))
  const addr = m.server.address()
  m.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
  return m
}

/** deadUrl is a loopback port nothing listens on. */
async function deadUrl(): Promise<string> {
  const m = await member(value('x'))
  await new Promise((r) => m.server.close(r))
  return m.url
}

const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b)

describe('DbLoader', () => {
  it('reads a value and believes a 404 with code 1002 without asking another member', async () => {
    const a = await member(value('va'))
    const b = await member(value('vb'))
    const loader = new DbLoader([a.url, b.url], { maxValueBytes: 1024 })
    const first = await loader.load('k/ü')
    assert.ok(first && ['va', 'vb'].includes(text(first) as string))
    a.behave = notFound
    b.behave = notFound
    const before = a.hits.length + b.hits.length
    assert.equal(await loader.load('missing'), undefined)
    assert.equal(a.hits.length + b.hits.length, before + 1)
    assert.ok([...a.hits, ...b.hits].includes('k/ü'))
    await loader.close()
  })

  it('fails over at once from a member that is down or answers an error', async () => {
    const down = await deadUrl()
    const erring = await member(fail(503))
    const wrongRoute = await member((_k, res) => res.writeHead(404).end('{"code":1001}'))
    const good = await member(value('ok'))
    const loader = new DbLoader([down, erring.url, wrongRoute.url, good.url], {
      maxValueBytes: 1024,
      hedgeMs: 10_000,
    })
    // Failing over on errors waits for no timer: well within the 10 s hedge delay.
    const started = Date.now()
    assert.equal(text(await loader.load('k')), 'ok')
    assert.ok(Date.now() - started < 5_000)
    const stats = loader.stats()
    assert.equal(stats.filter((s) => s.down).length, 3)
    // The failed ones are tried last now: the next read goes straight to the good one.
    const hits = good.hits.length
    assert.equal(text(await loader.load('k2')), 'ok')
    assert.equal(good.hits.length, hits + 1)
    assert.equal(erring.hits.length, 1)
    await loader.close()
  })

  it('hedges: asks the next member when the first is slow, and takes the first answer', async () => {
    const sluggish = await member(slow(60_000, value('late')))
    const quick = await member(value('quick'))
    // A failover would wait half the 40 s deadline: an answer well before it is the hedge's.
    const loader = new DbLoader([sluggish.url, quick.url], {
      maxValueBytes: 1024,
      hedgeMs: 30,
      timeoutMs: 40_000,
    })
    // Both untried: order is the list's, so the slow one is asked first.
    const started = Date.now()
    const v = await loader.load('k')
    const took = Date.now() - started
    assert.equal(text(v), 'quick')
    assert.equal(sluggish.hits.length, 1, 'the slow member was asked first')
    assert.ok(took < 10_000, `took ${took} ms`)
    assert.equal(
      loader.stats().find((s) => s.url === sluggish.url)?.errors,
      0,
      'hedged, not failed',
    )
    await loader.close()
  })

  it('prefers the member that answered fastest', async () => {
    const slower = await member(slow(500, value('s')))
    const faster = await member(value('f'))
    const loader = new DbLoader([slower.url, faster.url], { maxValueBytes: 1024, hedgeMs: 1_000 })
    for (let i = 0; i < 4; i++) await loader.load(`warm${i}`)
    const before = faster.hits.length
    for (let i = 0; i < 10; i++) assert.equal(text(await loader.load(`k${i}`)), 'f')
    assert.equal(faster.hits.length, before + 10)
    await loader.close()
  })

  it('stops preferring a member that hangs, and never waits a whole fill on it', async () => {
    const a = await member(value('a'))
    const b = await member(value('b'))
    const loader = new DbLoader([a.url, b.url], {
      maxValueBytes: 1024,
      hedgeMs: 100,
      timeoutMs: 2_000,
    })
    for (let i = 0; i < 4; i++) await loader.load(`warm${i}`)
    // Whichever answered faster is the favourite: it hangs now.
    const favourite = loader
      .stats()
      .reduce((x, y) => ((x.ewma_ms ?? 0) <= (y.ewma_ms ?? 0) ? x : y))
    const [hangs, other] = favourite.url === a.url ? [a, b] : [b, a]
    hangs.behave = slow(60_000, value('late'))
    const want = other === a ? 'a' : 'b'
    const before = hangs.hits.length
    for (let i = 0; i < 10; i++) assert.equal(text(await loader.load(`k${i}`)), want)
    // A fill that asks it waits for the hedge (or, the hedge budget spent, for half the
    // deadline) and counts the wait against it: the next ones ask the member that answers
    // first. (Counted as never answering, it would stay the favourite and be asked first in
    // all ten; waited on alone, a fill would give up at the deadline.)
    const asked = hangs.hits.length - before
    assert.ok(asked <= 3, `the hung member was asked in ${asked} of 10 fills`)
    await loader.close()
  })

  it('fails over from a member that has not answered in half the deadline when it may not hedge', async () => {
    const hangs = await member(slow(60_000, value('late')))
    const good = await member(value('ok'))
    const loader = new DbLoader([hangs.url, good.url], {
      maxValueBytes: 1024,
      hedgeMs: 10,
      timeoutMs: 3_000,
      hedgeShare: 0,
    })
    // Both untried: the hung one is asked first, and no hedge may go out.
    const started = Date.now()
    assert.equal(text(await loader.load('k')), 'ok')
    const took = Date.now() - started
    assert.equal(hangs.hits.length, 1)
    assert.ok(took >= 1_400, `failed over after ${took} ms, before half the deadline`)
    const s = loader.stats().find((x) => x.url === hangs.url)
    assert.equal(s?.errors, 1, 'the failover counts as an error of the hung member')
    // The wait counts against it (and it is tried last for a while): the next fill asks the
    // good one first, and the hung one not at all.
    assert.equal(text(await loader.load('k2')), 'ok')
    assert.equal(hangs.hits.length, 1)
    await loader.close()
  })

  it('gives up with UnavailableError at the deadline or when every member failed', async () => {
    const hang = await member(slow(5_000, value('never')))
    const loader = new DbLoader([hang.url], { maxValueBytes: 1024, timeoutMs: 200 })
    await assert.rejects(
      loader.load('k'),
      (e) => e instanceof UnavailableError && /200 ms/.test(e.message),
    )
    await loader.close()
    const all = new DbLoader([await deadUrl(), await deadUrl()], { maxValueBytes: 1024 })
    await assert.rejects(
      all.load('k'),
      (e) => e instanceof UnavailableError && /no database member answered/.test(e.message),
    )
    await all.close()
    await assert.rejects(new DbLoader([], { maxValueBytes: 1 }).load('k'), UnavailableError)
  })

  it('refuses a value over the size limit', async () => {
    const big = await member(value('x'.repeat(100)))
    const loader = new DbLoader([big.url], { maxValueBytes: 10 })
    await assert.rejects(loader.load('k'), UnavailableError)
    await loader.close()
  })

  it('keeps what it knows of members that stay when the list changes', async () => {
    const a = await member(value('a'))
    const b = await member(value('b'))
    const loader = new DbLoader([a.url], { maxValueBytes: 1024 })
    await loader.load('k')
    assert.ok(!loader.setMembers([a.url]))
    assert.ok(loader.setMembers([a.url, b.url]))
    assert.notEqual(loader.stats().find((s) => s.url === a.url)?.ewma_ms, null)
    assert.ok(loader.setMembers([b.url]))
    assert.deepEqual(loader.urls, [b.url])
    await loader.close()
  })
})
