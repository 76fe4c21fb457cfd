// Every error response of an oncekv listener carries its numeric code in the x-oncekv-code
// header as well as in its JSON body: thrown errors, unknown routes, the router's own errors,
// the drain mode's 503 and requests Node's parser refuses. A HEAD's answer has no body, so the
// header is how a client tells "key not found" (1002) from any other 404.
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
})
