// How the admin follows the database cluster: which member's GET /cluster it believes, and
// when it tells of a change. The calls go to a Caller that answers from a table.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ClusterMember, ClusterResponse } from '../protocol/index.ts'
import type { CallAnswer, CallOptions, Caller } from '../security/http-client.ts'
import { DbWatcher, type DbView } from './db-watcher.ts'

const member = (id: string, suffrage: ClusterMember['suffrage'] = 'voter'): ClusterMember => ({
  id,
  http: `127.0.0.1:${id.slice(1)}000`,
  raft: `127.0.0.1:${id.slice(1)}001`,
  suffrage,
  leader: id === 'n1',
})

const cluster = (leader: string, members: ClusterMember[]): ClusterResponse => ({
  id: 'n1',
  leader,
  term: 2,
  applied: 10,
  members,
})

/** TableCaller answers each URL from answers (a thrown error when it names none). */
class TableCaller implements Caller {
  readonly calls: string[] = []
  answers = new Map<string, CallAnswer>()

  call(url: string, opts: CallOptions): Promise<CallAnswer> {
    this.calls.push(`${opts.method ?? 'GET'} ${url} ${opts.headers?.authorization ?? ''}`)
    const answer = this.answers.get(url)
    return answer ? Promise.resolve(answer) : Promise.reject(new Error('connection refused'))
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

const json = (body: unknown, status = 200): CallAnswer => ({
  status,
  ok: status >= 200 && status < 300,
  body: JSON.stringify(body),
})

/** pollOnce runs the watcher's first poll (start() starts one at once) and stops it. */
async function pollOnce(w: DbWatcher, caller: TableCaller, calls: number): Promise<void> {
  w.start()
  w.stop()
  for (let i = 0; i < 100 && caller.calls.length < calls; i++) await Promise.resolve()
  // Let the poll that made the last call finish with its answer.
  await new Promise((resolve) => setImmediate(resolve))
}

describe('DbWatcher', () => {
  it('skips members that fail, answer an error, bad JSON or no leader, and believes the next', async () => {
    const caller = new TableCaller()
    const seeds = ['http://a', 'http://b', 'http://c', 'http://d', 'http://e']
    // A valid view in an error answer is still an error answer.
    caller.answers.set('http://b/cluster', json(cluster('n1', [member('n1')]), 503))
    caller.answers.set('http://c/cluster', { status: 200, ok: true, body: '{"members": [' })
    caller.answers.set('http://d/cluster', json(cluster('', [member('n1')])))
    caller.answers.set(
      'http://e/cluster',
      json(cluster('n1', [member('n2'), member('n1'), member('n3', 'learner')])),
    )
    const views: DbView[] = []
    const w = new DbWatcher(seeds, (v) => views.push(v), caller, 1_000, {
      authorization: 'Bearer r',
    })
    await pollOnce(w, caller, 5)
    assert.deepEqual(
      caller.calls,
      seeds.map((s) => `GET ${s}/cluster Bearer r`),
    )
    assert.equal(views.length, 1, 'one change told')
    assert.equal(w.current.from, 'http://e')
    // Voters only, sorted, with the scheme of the member that answered.
    assert.deepEqual(w.current.urls, ['http://127.0.0.1:1000', 'http://127.0.0.1:2000'])
    assert.equal(w.current.cluster?.leader, 'n1')
    // The round says whom it passed over and why.
    assert.equal(w.lastPoll.ok, true)
    assert.deepEqual(w.lastPoll.tried, [
      'http://a (connection refused)',
      'http://b (answered 503)',
      'http://c (answered a body that is not JSON)',
      'http://d (knows no leader)',
    ])
    assert.deepEqual(w.counts, { polls: 1, failed: 0 })
  })

  it('counts a round in which no member answers as failed, and says why for each', async () => {
    const caller = new TableCaller()
    caller.answers.set(
      'http://b/cluster',
      json({ code: 1001, error: 'unauthorized', message: 'this route needs a token' }, 401),
    )
    caller.answers.set('http://c/cluster', json(null))
    const w = new DbWatcher(['http://a', 'http://b', 'http://c'], () => {}, caller)
    assert.deepEqual(w.lastPoll, { at: 0, ok: false, tried: [] }, 'no round yet')
    await pollOnce(w, caller, 3)
    assert.equal(w.lastPoll.ok, false)
    assert.ok(w.lastPoll.at > 0)
    assert.deepEqual(w.lastPoll.tried, [
      'http://a (connection refused)',
      'http://b (answered 401 unauthorized)',
      'http://c (answered no member list)',
    ])
    assert.deepEqual(w.counts, { polls: 1, failed: 1 })
    assert.equal(w.current.cluster, undefined)
  })

  it('asks the member that answered last first, and tells only of changes', async () => {
    const caller = new TableCaller()
    const answer = json(cluster('n1', [member('n1'), member('n2')]))
    caller.answers.set('http://b/cluster', answer)
    let changes = 0
    const w = new DbWatcher(['http://a', 'http://b'], () => changes++, caller)
    await pollOnce(w, caller, 2)
    assert.equal(changes, 1)
    caller.calls.length = 0
    await pollOnce(w, caller, 1)
    assert.deepEqual(caller.calls, ['GET http://b/cluster '])
    assert.equal(changes, 1, 'the same view is no change')
    caller.answers.set('http://b/cluster', json(cluster('n2', [member('n1'), member('n2')])))
    caller.calls.length = 0
    await pollOnce(w, caller, 1)
    assert.equal(changes, 2, 'a new leader is a change')
  })
})
