// A listener's TLS and limits, over real sockets: HTTPS with the CA works and plain HTTP to a
// TLS port fails cleanly; a long URL gets a 414, long headers a 431, a client that trickles
// its headers a 408 and a close within the timeout, a connection over the listener's limit a
// 503 and a close, a pipelined request over the in-flight cap a 429 and a close; a WebSocket
// message over maxPayload closes the socket with 1009, and one from a foreign Origin is refused.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { WebSocket } from 'ws'
import { makeCerts } from '../../test/e2e/certs.ts'
import { createApp, type ServerTls } from './app.ts'
import type { HttpLimits } from './limits.ts'
import { sameOrigin, WsHub } from './ws-hub.ts'

const DEADLINE_MS = 5_000

async function start(
  limits: Partial<HttpLimits>,
  tls?: ServerTls,
): Promise<{ app: FastifyInstance; port: number; release: () => void }> {
  const app = createApp({
    logger: pino({ level: 'silent' }),
    bodyLimit: 1024,
    draining: () => false,
    limits,
    ...(tls ? { tls } : {}),
  })
  let release!: () => void
  let held = new Promise<void>((resolve) => (release = resolve))
  app.get('/ok', async () => ({ ok: true }))
  app.post('/echo', async (req) => ({ got: String(req.body).length }))
  app.get('/hold', async () => {
    await held
    return { held: true }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  assert.ok(typeof address === 'object' && address !== null)
  return {
    app,
    port: address.port,
    release: () => {
      release()
      held = Promise.resolve()
    },
  }
}

/** exchange writes text on a new connection and resolves with everything read until the
 * server closes it (rejecting after DEADLINE_MS); onOpen may keep the socket. */
function exchange(
  port: number,
  text: string,
  onOpen?: (s: Socket) => void,
): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const socket = connect(port, '127.0.0.1', () => {
      onOpen?.(socket)
      socket.write(text)
    })
    let got = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no close within ${DEADLINE_MS} ms; got ${JSON.stringify(got)}`))
    }, DEADLINE_MS)
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text: got, ms: Date.now() - t0 })
    })
    socket.on('error', () => {})
  })
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', reject)
  })
}

describe('listener limits', () => {
  let srv: Awaited<ReturnType<typeof start>>
  before(async () => {
    srv = await start({
      maxUrlBytes: 4000,
      maxHeaderBytes: 6000,
      headersTimeoutMs: 300,
      requestTimeoutMs: 600,
      maxInFlightPerConnection: 2,
    })
  })
  after(() => srv.app.close())

  it('answers a URL over the limit with a 414 JSON error and keeps serving', async () => {
    const long = await fetch(`http://127.0.0.1:${srv.port}/ok?${'a'.repeat(4000)}`)
    assert.equal(long.status, 414)
    assert.equal(((await long.json()) as { error: string }).error, 'uri_too_long')
    const ok = await fetch(`http://127.0.0.1:${srv.port}/ok?${'a'.repeat(3000)}`)
    assert.equal(ok.status, 200)
  })

  it('answers headers over the limit with a 431 JSON error and closes', async () => {
    const { text } = await exchange(
      srv.port,
      `GET /ok HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(7000)}\r\n\r\n`,
    )
    assert.match(text, /^HTTP\/1\.1 431 /)
    assert.match(text, /"code":1001/)
  })

  it('closes a client that trickles its headers, with a 408, within the timeout', async () => {
    const { text, ms } = await exchange(srv.port, 'GET /ok HTTP/1.1\r\nhost: x\r\nx-slow: ')
    assert.match(text, /^HTTP\/1\.1 408 /)
    assert.match(text, /"error":"request_timeout"/)
    assert.ok(ms >= 250 && ms < 2_000, `closed after ${ms} ms`)
  })

  it('closes a client that trickles its body, with a 408, within the request timeout', async () => {
    const { text, ms } = await exchange(
      srv.port,
      'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nabc',
    )
    assert.match(text, /^HTTP\/1\.1 408 /)
    assert.ok(ms >= 550 && ms < 2_500, `closed after ${ms} ms`)
  })

  it('answers a connection over the limit with a 503 and closes it', async () => {
    // A listener of its own: the others' keep-alive connections would count.
    const own = await start({ maxConnections: 3 })
    try {
      const held = [
        await openSocket(own.port),
        await openSocket(own.port),
        await openSocket(own.port),
      ]
      try {
        const { text } = await exchange(own.port, 'GET /ok HTTP/1.1\r\nhost: x\r\n\r\n')
        assert.match(text, /^HTTP\/1\.1 503 /)
        assert.match(text, /connection: close/i)
        assert.match(text, /limit of 3 connections/)
      } finally {
        for (const s of held) s.destroy()
      }
      // Once they are gone, connections are served again.
      const deadline = Date.now() + DEADLINE_MS
      for (;;) {
        const { text } = await exchange(
          own.port,
          'GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
        )
        if (/^HTTP\/1\.1 200 /.test(text)) break
        assert.ok(Date.now() < deadline, text)
      }
    } finally {
      await own.app.close()
    }
  })

  it('answers a pipelined request over the in-flight cap with a 429 and closes', async () => {
    const req = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`
    const got = exchange(srv.port, req('/hold') + req('/hold') + req('/ok') + req('/ok'))
    // The first two are in flight (held), the third is over the cap.
    setTimeout(() => srv.release(), 200)
    const { text } = await got
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1])
    assert.deepEqual(statuses, ['200', '200', '429'])
    assert.match(text, /"error":"too_many_requests"/)
  })
})

describe('listener TLS', () => {
  const certs = makeCerts()
  const ca = readFileSync(certs.ca)
  let srv: Awaited<ReturnType<typeof start>>
  before(async () => {
    srv = await start({}, { cert: readFileSync(certs.cert), key: readFileSync(certs.key) })
  })
  after(() => srv.app.close())

  it('serves HTTPS to a client that trusts the CA', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: srv.port, path: '/ok', ca }, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () => resolve(`${res.statusCode} ${text}`))
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(body, '200 {"ok":true}')
  })

  it('refuses a client without the CA, and plain HTTP, with a closed connection', async () => {
    await assert.rejects(
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: srv.port, path: '/ok' }, resolve)
        req.on('error', reject)
        req.end()
      }),
      /self-signed certificate|unable to verify/,
    )
    const { text } = await exchange(srv.port, 'GET /ok HTTP/1.1\r\nhost: x\r\n\r\n')
    assert.doesNotMatch(text, /^HTTP/)
    // And the listener still serves.
    const again = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: srv.port, path: '/ok', ca }, (res) => {
        res.resume()
        resolve(res.statusCode)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(again, 200)
  })

  it('answers a body over the limit and a broken request over TLS before closing', async () => {
    // A 413 before the body is read: the connection closes lingering, so the client reads
    // the answer instead of a reset.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: srv.port,
          path: '/echo',
          method: 'POST',
          ca,
          headers: { 'content-type': 'text/plain' },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode)
        },
      )
      req.on('error', reject)
      req.end(Buffer.alloc(4 * 1024 * 1024, 97))
    })
    assert.equal(status, 413)
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: srv.port, ca }, () =>
        socket.write('NOT HTTP\r\n\r\n'),
      )
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
    })
    assert.match(raw, /^HTTP\/1\.1 400 /)
    assert.match(raw, /"code":1001/)
  })
})

describe('WebSocket limits', () => {
  it('closes a client whose message is over maxPayload with 1009', async () => {
    const app = createApp({
      logger: pino({ level: 'silent' }),
      bodyLimit: 1024,
      draining: () => false,
    })
    const hub = new WsHub(app.server, { maxPayload: 1024, checkOrigin: sameOrigin() })
    hub.route('/ws')
    await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const address = app.server.address()
      assert.ok(typeof address === 'object' && address !== null)
      const ws = new WebSocket(`ws://127.0.0.1:${address.port}/ws`)
      const code = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no close')), DEADLINE_MS)
        ws.on('open', () => ws.send('x'.repeat(2048)))
        ws.on('close', (c: number) => {
          clearTimeout(timer)
          resolve(c)
        })
        ws.on('error', () => {})
      })
      assert.equal(code, 1009)
      // A page from a foreign origin is refused before the upgrade, with a JSON 403.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const foreign = new WebSocket(`ws://127.0.0.1:${address.port}/ws`, {
          origin: 'http://evil.example',
        })
        foreign.on('unexpected-response', (_req, res) => resolve(res.statusCode))
        foreign.on('open', () => reject(new Error('a foreign origin was let in')))
        foreign.on('error', () => {})
      })
      assert.equal(status, 403)
    } finally {
      hub.close()
      await app.close()
    }
  })
})
