// Every error response of an oncekv listener carries its numeric code in the x-oncekv-code
// header as well as in its JSON body: thrown errors, unknown routes, the router's own errors,
// the drain mode's 503 and requests Node's parser refuses. A HEAD's answer has no body, so the
// header is how a client tells "key not found" (1002) from any other 404. The framework's own
// refusals say what was wrong in the project's words: the body limit in bytes, the bad
// percent-escape of a URL, the content type a route did not take.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { KeyNotFoundError } from '../protocol/index.ts'
import { createApp } from './app.ts'

/** CODE_HEADER is the header's name, as clients know it. */
const CODE_HEADER = 'x-oncekv-code'

describe('error responses', () => {
  let draining = false
  const app = createApp({
    logger: pino({ level: 'silent' }),
    bodyLimit: 1024,
    draining: () => draining,
  })
  app.get('/keys/*', async (req) => {
    throw new KeyNotFoundError((req.params as { '*': string })['*'])
  })
  app.get('/key/:key', async () => 'found')
  app.post('/json', async () => ({ code: 1000 }))
  app.register(async (raw) => {
    raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    raw.put('/raw/*', { bodyLimit: 10 }, async () => ({ code: 1000 }))
  })
  after(() => app.close())

  it('carry the code in a header on GET and HEAD, for thrown errors and unknown routes', async () => {
    for (const method of ['GET', 'HEAD'] as const) {
      const missing = await app.inject({ method, url: '/keys/a%2Fb' })
      assert.equal(missing.statusCode, 404, method)
      assert.equal(missing.headers[CODE_HEADER], '1002', method)
      const route = await app.inject({ method, url: '/no/such/route' })
      assert.equal(route.statusCode, 404, method)
      assert.equal(route.headers[CODE_HEADER], '1001', method)
      if (method === 'GET') {
        assert.equal(missing.json<{ code: number }>().code, 1002)
        assert.equal(route.json<{ code: number }>().code, 1001)
      }
    }
    // The router's error for a bad percent-escape in a path parameter.
    const bad = await app.inject({ method: 'GET', url: '/key/%zz' })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.headers[CODE_HEADER], '1001')
    // A success has none.
    const ok = await app.inject({ method: 'GET', url: '/key/k' })
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.headers[CODE_HEADER], undefined)
  })

  it('carry it on the drain mode’s 503 and on a request the parser refuses', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    assert.ok(typeof address === 'object' && address !== null)
    // A broken request line: Node's parser refuses it before Fastify sees it.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(address.port, '127.0.0.1', () => socket.write('NOT HTTP\r\n\r\n'))
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')))
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
    })
    assert.match(raw, /^HTTP\/1\.1 400 /)
    assert.match(raw, new RegExp(`\r\n${CODE_HEADER}: 1001\r\n`, 'i'))
    draining = true
    try {
      const res = await app.inject({ method: 'HEAD', url: '/keys/k' })
      assert.equal(res.statusCode, 503)
      assert.equal(res.headers[CODE_HEADER], '1005')
    } finally {
      draining = false
    }
  })

  it('name the body limit in bytes, and the size when the request gave it', async () => {
    const json = { 'content-type': 'application/json' }
    const over = await app.inject({
      method: 'POST',
      url: '/json',
      headers: json,
      payload: JSON.stringify({ v: 'x'.repeat(2000) }),
    })
    assert.equal(over.statusCode, 413)
    assert.deepEqual(over.json(), {
      code: 1001,
      error: 'too_large',
      message: 'the request body is 2008 bytes; the limit is 1024 bytes',
    })
    // A route's own limit.
    const raw = await app.inject({ method: 'PUT', url: '/raw/k', payload: 'x'.repeat(11) })
    assert.equal(raw.statusCode, 413)
    assert.equal(
      raw.json<{ message: string }>().message,
      'the request body is 11 bytes; the limit is 10 bytes',
    )
    // A chunked body has no size until it is read: the limit alone.
    if (!app.server.listening) await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    assert.ok(typeof address === 'object' && address !== null)
    const chunked = await fetch(`http://127.0.0.1:${address.port}/json`, {
      method: 'POST',
      headers: json,
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(JSON.stringify({ v: 'x'.repeat(2000) })))
          c.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    assert.equal(chunked.status, 413)
    assert.equal(chunked.headers.get('transfer-encoding'), null)
    assert.equal(
      ((await chunked.json()) as { message: string }).message,
      'the request body is over the limit of 1024 bytes',
    )
  })

  it('say which percent-escape of the URL is bad, in a 400', async () => {
    for (const [url, bad, shown] of [
      ['/key/bad%FF', '%FF', '/key/bad%FF'],
      ['/key/%zz?x=1', '%zz', '/key/%zz'],
      ['/keys/a%', '%', '/keys/a%'],
      ['/keys/%E0%A4%A', '%E0%A4', '/keys/%E0%A4%A'],
      ['/keys/%ED%A0%80', '%ED%A0%80', '/keys/%ED%A0%80'],
    ]) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 400, url)
      assert.equal(res.headers[CODE_HEADER], '1001', url)
      const body = res.json<{ code: number; error: string; message: string }>()
      assert.equal(body.error, 'bad_request', url)
      assert.ok(
        body.message.startsWith(`the URL has an invalid percent-escape: ${bad} in ${shown} (`),
        `${url}: ${body.message}`,
      )
      assert.match(body.message, /%25/, url)
    }
  })

  it('say which content type a route did not take', async () => {
    const none = await app.inject({ method: 'POST', url: '/json', payload: '{}' })
    assert.equal(none.statusCode, 415)
    assert.deepEqual(none.json(), {
      code: 1001,
      error: 'unsupported_media_type',
      message:
        'the request has a body but no content-type header; this route takes application/json',
    })
    const form = await app.inject({
      method: 'POST',
      url: '/json',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=b',
    })
    assert.equal(form.statusCode, 415)
    assert.equal(
      form.json<{ message: string }>().message,
      'this route does not take a body of content type "application/x-www-form-urlencoded"; it takes application/json',
    )
  })
})
