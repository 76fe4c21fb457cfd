// The access rule of every listener: which secrets each route class takes once protected,
// 401 without a token and 403 with a wrong one (JSON bodies, WWW-Authenticate), the admin's
// session cookie, and which secret a process sends to another.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { Secret, type Security } from '../security/index.ts'
import { createApp } from './app.ts'
import {
  Auth,
  authHeaders,
  cookieValue,
  SESSION_COOKIE,
  sessionValue,
  type RouteClass,
} from './auth.ts'

const token = (name: string): Secret => new Secret(`${name}-token-0123456789abcdef`, `$${name}`)
const READ = token('read')
const WRITE = token('write')
const ADMIN = token('admin')
const CLUSTER = token('cluster')
const WRONG = token('wrong')
const bearer = (s: Secret | string): { authorization: string } => ({
  authorization: typeof s === 'string' ? s : s.bearer(),
})

describe('Auth', () => {
  it('leaves every class open without secrets', () => {
    const auth = new Auth({})
    assert.equal(auth.on, false)
    for (const cls of ['open', 'read', 'write', 'admin'] as RouteClass[])
      assert.equal(auth.problem(cls, {}), undefined)
  })

  it('protects a class only when its token is set; the cluster secret guards admin', () => {
    const auth = new Auth({ write: WRITE })
    assert.equal(auth.protects('read'), false)
    assert.equal(auth.protects('write'), true)
    assert.equal(auth.protects('admin'), false)
    assert.equal(new Auth({ cluster: CLUSTER }).protects('admin'), true)
    assert.equal(new Auth({ cluster: CLUSTER }).protects('read'), false)
  })

  it('takes a class token, a stronger one or the cluster secret, and nothing else', () => {
    const all: Security = { read: READ, write: WRITE, admin: ADMIN, cluster: CLUSTER }
    const auth = new Auth(all)
    const takes: Record<Exclude<RouteClass, 'open'>, Secret[]> = {
      read: [READ, WRITE, ADMIN, CLUSTER],
      write: [WRITE, ADMIN, CLUSTER],
      admin: [ADMIN, CLUSTER],
    }
    for (const [cls, ok] of Object.entries(takes) as [Exclude<RouteClass, 'open'>, Secret[]][]) {
      for (const s of [READ, WRITE, ADMIN, CLUSTER, WRONG]) {
        const err = auth.problem(cls, bearer(s))
        if (ok.includes(s)) assert.equal(err, undefined, `${cls} takes ${s.source}`)
        else {
          assert.equal(err?.status, 403, `${cls} refuses ${s.source}`)
          assert.equal(err?.error, 'forbidden')
        }
        assert.equal(auth.allows(cls, bearer(s)), ok.includes(s))
      }
      const none = auth.problem(cls, {})
      assert.equal(none?.status, 401)
      assert.equal(none?.error, 'unauthorized')
      assert.equal(auth.problem(cls, bearer('Basic abc'))?.status, 401)
      assert.equal(auth.allows(cls, {}), false)
    }
  })

  it('never puts a secret in an error message', () => {
    const auth = new Auth({ read: READ, write: WRITE, admin: ADMIN, cluster: CLUSTER })
    for (const cls of ['read', 'write', 'admin'] as const)
      for (const h of [{}, bearer(WRONG), bearer(READ)]) {
        const text = JSON.stringify(auth.problem(cls, h)?.body() ?? {})
        for (const s of [READ, WRITE, ADMIN, CLUSTER, WRONG])
          assert.ok(!text.includes(s.reveal()), text)
      }
  })

  it('takes the session cookie of the admin token or the cluster secret when sessions are on', () => {
    const auth = new Auth({ admin: ADMIN, cluster: CLUSTER }, { sessions: true })
    const cookie = (v: string): { cookie: string } => ({ cookie: `a=b; ${SESSION_COOKIE}=${v}` })
    assert.equal(auth.login(READ.reveal()), undefined)
    assert.equal(auth.login(WRONG.reveal()), undefined)
    const s = auth.login(ADMIN.reveal())
    assert.equal(s, sessionValue(ADMIN))
    assert.ok(s && !s.includes(ADMIN.reveal()))
    assert.equal(auth.problem('admin', cookie(s as string)), undefined)
    assert.equal(auth.problem('admin', cookie(sessionValue(CLUSTER))), undefined)
    assert.equal(auth.problem('admin', cookie(sessionValue(WRONG)))?.status, 403)
    // Without sessions, a cookie is no credential.
    assert.equal(new Auth({ admin: ADMIN }).problem('admin', cookie(s as string))?.status, 401)
    assert.equal(cookieValue('x=1;  oncekv_session=abc ', SESSION_COOKIE), 'abc')
    assert.equal(cookieValue('x=1', SESSION_COOKIE), undefined)
  })

  it('sends the cluster secret when held, else the class token, else a stronger one', () => {
    assert.deepEqual(authHeaders(undefined, 'read'), {})
    assert.deepEqual(authHeaders({ read: READ }, 'write'), {})
    assert.deepEqual(authHeaders({ read: READ, admin: ADMIN }, 'read'), bearer(READ))
    assert.deepEqual(authHeaders({ write: WRITE, admin: ADMIN }, 'read'), bearer(WRITE))
    assert.deepEqual(authHeaders({ admin: ADMIN }, 'write'), bearer(ADMIN))
    assert.deepEqual(authHeaders({ admin: ADMIN, cluster: CLUSTER }, 'read'), bearer(CLUSTER))
  })
})

describe('Auth.hook on a listener', () => {
  const auth = new Auth({ write: WRITE })
  const app = createApp({
    logger: pino({ level: 'silent' }),
    bodyLimit: 1024,
    draining: () => false,
  })
  app.addHook(
    'onRequest',
    auth.hook((method, route) => (route === '/keys/*' && method === 'PUT' ? 'write' : 'read')),
  )
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  app.put('/keys/*', async () => ({ code: 1000 }))
  app.get('/keys/*', async () => ({ code: 1000 }))
  after(() => app.close())

  it('answers 401 with WWW-Authenticate, 403, or lets the request through', async () => {
    const none = await app.inject({ method: 'PUT', url: '/keys/a', payload: 'x' })
    assert.equal(none.statusCode, 401)
    assert.equal(none.headers['www-authenticate'], 'Bearer')
    assert.equal(none.headers['x-oncekv-code'], '1001')
    assert.equal(none.json().error, 'unauthorized')
    const wrong = await app.inject({
      method: 'PUT',
      url: '/keys/a',
      payload: 'x',
      headers: bearer(READ),
    })
    assert.equal(wrong.statusCode, 403)
    assert.equal(wrong.json().error, 'forbidden')
    const ok = await app.inject({
      method: 'PUT',
      url: '/keys/a',
      payload: 'x',
      headers: bearer(WRITE),
    })
    assert.equal(ok.statusCode, 200)
    // Reads stay open: no read token.
    assert.equal((await app.inject({ method: 'GET', url: '/keys/a' })).statusCode, 200)
  })
})
