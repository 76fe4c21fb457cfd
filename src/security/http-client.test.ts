// The caller the admin polls members and caches with: what it sends, what it returns, and
// that its deadline covers the whole call, a server that never answers included.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { processCaller } from './http-client.ts'

describe('processCaller', { timeout: 20_000 }, () => {
  let server: Server
  let base = ''
  const seen: { method: string; url: string; auth: string; body: string }[] = []
  // Requests to /hang are never answered until the server closes; arrived is told of each.
  const hung: ServerResponse[] = []
  let arrived: (() => void) | undefined

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization ?? '',
          body: Buffer.concat(chunks).toString(),
        })
        if (req.url === '/hang') {
          hung.push(res)
          return void arrived?.()
        }
        if (req.url === '/huge') {
          res.writeHead(200, { 'content-type': 'application/json' })
          return void res.end(Buffer.alloc(5 * 1024 * 1024, 0x20))
        }
        if (req.url === '/slow-body') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.write('{"a":')
          return void hung.push(res)
        }
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ ok: req.url !== '/missing' }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    for (const res of hung) res.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('sends the method, headers and body, and returns the status and body', async () => {
    const caller = processCaller(undefined)
    try {
      const got = await caller.call(`${base}/stats`, {
        headers: { authorization: 'Bearer t' },
        timeoutMs: 2_000,
      })
      assert.deepEqual(got, { status: 200, ok: true, body: '{"ok":true}' })
      const posted = await caller.call(`${base}/meta`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"dbs":[]}',
        timeoutMs: 2_000,
      })
      assert.equal(posted.status, 200)
      const missing = await caller.call(`${base}/missing`, { timeoutMs: 2_000 })
      assert.deepEqual(missing, { status: 404, ok: false, body: '{"ok":false}' })
      assert.deepEqual(
        seen.slice(-3).map((s) => [s.method, s.url, s.auth, s.body]),
        [
          ['GET', '/stats', 'Bearer t', ''],
          ['POST', '/meta', '', '{"dbs":[]}'],
          ['GET', '/missing', '', ''],
        ],
      )
    } finally {
      await caller.close()
    }
  })

  it('gives up at its deadline, before the answer starts and in the middle of the body', async () => {
    const caller = processCaller(undefined)
    try {
      for (const path of ['/hang', '/slow-body']) {
        const t0 = Date.now()
        await assert.rejects(
          caller.call(`${base}${path}`, { timeoutMs: 300 }),
          /no answer within 300 ms/,
          path,
        )
        const took = Date.now() - t0
        assert(took >= 290 && took < 2_000, `${path}: gave up after ${took} ms`)
      }
    } finally {
      await caller.close()
    }
  })

  it('refuses an answer over its size cap', async () => {
    const caller = processCaller(undefined)
    try {
      await assert.rejects(caller.call(`${base}/huge`, { timeoutMs: 5_000 }))
      // The caller goes on working after it.
      assert.equal((await caller.call(`${base}/stats`, { timeoutMs: 2_000 })).status, 200)
    } finally {
      await caller.close()
    }
  })

  it('fails the calls in flight at once when closed', async () => {
    const caller = processCaller(undefined)
    const onServer = new Promise<void>((resolve) => (arrived = resolve))
    const call = caller.call(`${base}/hang`, { timeoutMs: 10_000 })
    // The request must be on the wire before the close, or there is nothing in flight.
    await onServer
    const t0 = Date.now()
    await caller.close()
    await assert.rejects(call)
    assert(Date.now() - t0 < 5_000, 'the call failed long before its deadline')
  })
})
