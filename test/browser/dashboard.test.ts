// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core)
// against a whole local system started the way users start it (`oncekv dev`): the cards and
// the Leader tag appear, the tag moves when the leader is killed and the dead member shows as
// down (since when, with its last known figures greyed), every card draws its sparklines, cache
// cards their memory bar, members their replication and apply lag, a put through the form
// works, a lookup shows the value, its size and the cache node that served it (from the cache
// tier the second time) or says plainly that a key is missing, a second put shows the
// conflict, the page fits a phone-width screen, an admin with no nodes says how to start some,
// a page opened under a name the admin does not answer to says why it is refused, and Ctrl-C
// stops the system cleanly (exit code 0, no process left).
// Screenshots of each state go to test-artifacts/dashboard/ (not committed).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { AdminOverview, LookupResponse } from '../../src/protocol/index.ts'
import { freePort, waitFor } from '../e2e/cluster.ts'
import { killDev, startDev, stopDev, type Dev } from './dev.test-helper.ts'

// The few DOM names the page-side functions below use (they run in the browser; the project's
// type-check has no DOM library, so they are declared here, for this file only).
interface PageElement {
  getAttribute(name: string): string | null
  closest(selector: string): PageElement | null
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): ArrayLike<PageElement>
  readonly textContent: string | null
}
declare const document: {
  querySelectorAll(selector: string): ArrayLike<PageElement>
  querySelector(selector: string): PageElement | null
  readonly documentElement: { readonly scrollWidth: number }
}
declare const window: { readonly innerWidth: number }

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'oncekv.js')
const SHOTS = join(ROOT, 'test-artifacts', 'dashboard')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

async function overview(dev: Dev): Promise<AdminOverview> {
  return (await (await fetch(`${dev.adminUrl}/overview`)).json()) as AdminOverview
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

describe('dashboard in a browser', { timeout: 240_000 }, () => {
  let dir: string
  let dev: Dev | undefined
  let browser: Browser | undefined
  let page: Page

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `no browser at ${CHROMIUM}: install Debian's chromium (.ci/run does)`,
    )
    assert.ok(
      existsSync(join(ROOT, 'web', 'dist', 'index.html')),
      'the dashboard is not built: npm run build:web',
    )
    // Only this run's screenshots: older ones would be mistaken for them.
    rmSync(SHOTS, { recursive: true, force: true })
    mkdirSync(SHOTS, { recursive: true })
    dir = mkdtempSync(join(tmpdir(), 'oncekv-browser-'))
    dev = await startDev(['--data', join(dir, 'dev'), '--fresh'])
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // A name that resolves to this machine without being one of its names: what a
        // DNS-rebinding page would use.
        '--host-resolver-rules=MAP evil.example 127.0.0.1',
      ],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  })

  after(async () => {
    await browser?.close().catch(() => {})
    // The last test stops it cleanly; this is for a run that failed before.
    if (dev) await killDev(dev)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('shows a card per node and one Leader tag', async () => {
    const d = dev as Dev
    await page.goto(d.adminUrl)
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=node-card]').length === 6,
      null,
      { timeout: 20_000 },
    )
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=node-card][data-health=up]').length === 6,
      null,
      { timeout: 20_000 },
    )
    assert.equal(await page.locator('[data-testid=node-card][data-kind=db]').count(), 3)
    assert.equal(await page.locator('[data-testid=node-card][data-kind=cache]').count(), 3)
    assert.equal(await page.locator('[data-testid=leader-tag]').count(), 1)
    const leader = (await overview(d)).leader
    const tagged = page.locator('[data-testid=node-card]', {
      has: page.locator('[data-testid=leader-tag]'),
    })
    assert.equal(await tagged.getAttribute('data-node-id'), leader)
    // Every card draws its ops/s sparkline once it has two points of history (caches also
    // have a hit-ratio one, empty while nothing is read).
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('[data-testid=node-card]')).every((card) => {
          const sparks = card.querySelectorAll('[data-testid=sparkline]')
          const want = card.getAttribute('data-kind') === 'cache' ? 2 : 1
          const ops = card.querySelector('[data-testid=sparkline-line]')
          return sparks.length === want && /^M[\d.]+,[\d.]+L/.test(ops?.getAttribute('d') ?? '')
        }),
      null,
      { timeout: 20_000 },
    )
    // Cache cards show memory use against the bound.
    const bars = page.locator('[data-testid=node-card][data-kind=cache] [data-testid=memory]')
    assert.equal(await bars.count(), 3)
    for (let i = 0; i < 3; i++) {
      const pct = Number(await bars.nth(i).getAttribute('data-pct'))
      assert.ok(pct >= 0 && pct <= 100, `memory ${pct} %`)
      assert.match(await bars.nth(i).innerText(), /Memory .+ of .+ \(.+ %\)/)
    }
    // Members show their lags: followers both, the leader its apply lag only.
    const lagOf = (id: string, which: string) =>
      page.locator(`[data-testid=node-card][data-node-id="${id}"] [data-testid=lag-${which}]`)
    for (const n of (await overview(d)).nodes.filter((x) => x.kind === 'db')) {
      assert.match(await lagOf(n.id, 'apply').innerText(), /Apply lag\s+\d+ entr(y|ies)/)
      if (n.leader) assert.equal(await lagOf(n.id, 'replication').count(), 0)
      else assert.match(await lagOf(n.id, 'replication').innerText(), /Repl\. lag\s+\d+ entr/)
    }
    // The put form says the database's limit.
    assert.equal(
      await page.locator('[data-testid=put-limit]').getAttribute('data-bytes'),
      '1048576',
    )
    assert.match(await page.locator('[data-testid=put-limit]').innerText(), /1 MiB/)
    await shot(page, '1-all-up')
  })

  it('moves the Leader tag when the leader is killed, and shows the dead member as down', async () => {
    const d = dev as Dev
    const old = (await overview(d)).leader
    assert.ok(old)
    const pid = d.nodes.get(old)?.pid
    assert.ok(pid, `no pid for ${old} in ${d.output}`)
    process.kill(pid, 'SIGKILL')
    await page.waitForFunction(
      (oldId) => {
        const tags = document.querySelectorAll('[data-testid=leader-tag]')
        if (tags.length !== 1) return false
        const card = tags[0]?.closest('[data-testid=node-card]')
        const dead = document.querySelector(`[data-testid=node-card][data-node-id="${oldId}"]`)
        return (
          card?.getAttribute('data-node-id') !== oldId &&
          dead?.getAttribute('data-health') === 'down'
        )
      },
      old,
      { timeout: 30_000 },
    )
    // The dead member says since when, and shows its last known figures (not "No stats").
    const dead = page.locator(`[data-testid=node-card][data-node-id="${old}"]`)
    assert.match(
      await dead.locator('[data-testid=down-since]').innerText(),
      /^Down since \d{2}:\d{2}:\d{2}: last known figures, as of \d{2}:\d{2}:\d{2}$/,
    )
    assert.equal(await dead.locator('[data-testid=last-stats]').count(), 1)
    assert.match(await dead.locator('[data-testid=last-stats]').innerText(), /State\s+Leader/)
    assert.doesNotMatch(await dead.innerText(), /No stats/)
    await shot(page, '2-leader-moved')
  })

  it('puts a key through the form, looks it up, and shows a conflict on another value', async () => {
    const d = dev as Dev
    const caches = [...d.nodes].filter(([id]) => id.startsWith('c')).map(([, n]) => n.url)
    assert.equal(caches.length, 3, d.output)
    const key = `browser-${Date.now()}`
    await page.fill('[data-testid=put-key]', key)
    await page.fill('[data-testid=put-value]', 'first value')
    await page.click('[data-testid=put-button]')
    await page.waitForSelector('[data-testid=put-result][data-outcome=created]', {
      timeout: 20_000,
    })

    // lookUp looks a key up through the form and returns what the admin answered, once the
    // page shows that answer.
    const lookUp = async (k: string): Promise<LookupResponse> => {
      await page.fill('[data-testid=lookup-input]', k)
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().includes('/api/lookup/'), { timeout: 20_000 }),
        page.click('[data-testid=lookup-button]'),
      ])
      assert.equal(res.status(), 200)
      const body = (await res.json()) as LookupResponse
      await page.waitForSelector(`[data-testid=lookup-result][data-found=${body.found}]`, {
        timeout: 10_000,
      })
      return body
    }
    // shown is what the result says: value, size, served by and source.
    const shown = async (): Promise<Record<string, string | null>> => ({
      value: await page.locator('[data-testid=lookup-result] [data-testid=value-text]').innerText(),
      bytes: await page.locator('[data-testid=lookup-size]').getAttribute('data-bytes'),
      size: await page.locator('[data-testid=lookup-size]').innerText(),
      servedBy: await page.locator('[data-testid=lookup-served-by]').innerText(),
      source: await page.locator('[data-testid=lookup-source]').getAttribute('data-source'),
    })

    // The first lookup fills from the database (the owner reads it, or the node asked gets it
    // from the owner).
    const first = await lookUp(key)
    assert.ok(caches.includes(first.served_by), `served by ${first.served_by}, not a cache`)
    assert.ok(['db', 'peer'].includes(first.source ?? ''), first.source)
    assert.deepEqual(await shown(), {
      value: 'first value',
      bytes: '11',
      size: '11 B',
      servedBy: first.served_by.replace('http://', ''),
      source: first.source,
    })
    await shot(page, '3-put-and-lookup')
    // The second is served by the cache tier: a main or hot cache, or the owner's.
    const second = await lookUp(key)
    assert.ok(caches.includes(second.served_by), `served by ${second.served_by}, not a cache`)
    assert.ok(['main', 'hot', 'peer'].includes(second.source ?? ''), second.source)
    assert.deepEqual(await shown(), {
      value: 'first value',
      bytes: '11',
      size: '11 B',
      servedBy: second.served_by.replace('http://', ''),
      source: second.source,
    })
    await shot(page, '4-lookup-cached')
    // A missing key is said plainly.
    const missing = await lookUp(`${key}-missing`)
    assert.equal(missing.found, false)
    const said = await page.locator('[data-testid=lookup-result]').innerText()
    assert.match(said, /Not found/)
    assert.ok(said.includes(`${key}-missing`), said)
    assert.equal(await page.locator('[data-testid=lookup-size]').count(), 0)
    await shot(page, '5-lookup-missing')

    await page.fill('[data-testid=put-value]', 'second value')
    await page.click('[data-testid=put-button]')
    await page.waitForSelector('[data-testid=put-result][data-outcome=conflict]', {
      timeout: 20_000,
    })
    const text = await page.locator('[data-testid=put-result]').innerText()
    assert.match(text, /first value/, 'the conflict shows the value that stays')
    await shot(page, '6-conflict')
  })

  it('fits a phone-width screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 })
    // The layout follows the resize within a frame or two; wait for it with a deadline.
    const fits = await page
      .waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, {
        timeout: 5_000,
      })
      .then(() => true)
      .catch(() => false)
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    )
    assert.ok(fits && overflow <= 0, `the page is ${overflow} px wider than the screen`)
    await shot(page, '7-phone')
  })

  it('says how to start nodes when there are none', async () => {
    const port = await freePort()
    const nowhere = await freePort()
    const admin = spawn(
      process.execPath,
      [BIN, 'admin', '--http', `127.0.0.1:${port}`, '--db', `http://127.0.0.1:${nowhere}`],
      {
        cwd: ROOT,
        stdio: 'ignore',
      },
    )
    try {
      const p = await (browser as Browser).newPage({ viewport: { width: 1280, height: 800 } })
      await waitFor(
        'the empty admin to answer',
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
      )
      // Opened by the name localhost: the admin's own page.
      await p.goto(`http://localhost:${port}/`)
      const empty = p.locator('[data-testid=empty-state][data-started-by=admin]')
      await empty.waitFor({ timeout: 20_000 })
      const said = await empty.innerText()
      assert.ok(said.includes(`no database member answers at http://127.0.0.1:${nowhere}`), said)
      assert.match(said, /oncekv db --id n1 --http/)
      assert.match(said, /oncekv cache --http .* --admin http:\/\/localhost:/)
      assert.match(said, /oncekv dev/)
      assert.equal(await p.locator('[data-testid=access-banner]').count(), 0)
      await shot(p, '8-empty')
      // Opened under a name that is not the admin's: refused, and the page says why.
      await p.goto(`http://evil.example:${port}/`)
      const banner = p.locator('[data-testid=access-banner]')
      await banner.waitFor({ timeout: 20_000 })
      const why = await banner.innerText()
      assert.match(why, /does not answer to the host name evil\.example/)
      assert.ok(why.includes(`--allow-origin http://evil.example:${port}`), why)
      await shot(p, '9-refused')
      await p.close()
    } finally {
      admin.kill('SIGKILL')
    }
  })

  it('asks for the admin token of a protected admin, then goes live', async () => {
    const port = await freePort()
    const token = `admin-${randomBytes(16).toString('hex')}`
    const admin = spawn(
      process.execPath,
      [BIN, 'admin', '--http', `127.0.0.1:${port}`, '--db', `http://127.0.0.1:${await freePort()}`],
      { cwd: ROOT, stdio: 'ignore', env: { ...process.env, ONCEKV_ADMIN_TOKEN: token } },
    )
    try {
      const p = await (browser as Browser).newPage({ viewport: { width: 1280, height: 800 } })
      await waitFor(
        'the protected admin to answer',
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
      )
      await p.goto(`http://localhost:${port}/`)
      const form = p.locator('[data-testid=login]')
      await form.waitFor({ timeout: 20_000 })
      await form.locator('input').fill('not-the-admin-token-at-all')
      await p.locator('[data-testid=login-submit]').click()
      const error = p.locator('[data-testid=login-error]')
      await error.waitFor({ timeout: 10_000 })
      assert.match(await error.innerText(), /not the admin token/)
      await form.locator('input').fill(token)
      await p.locator('[data-testid=login-submit]').click()
      // Logged in: the form goes and the WebSocket (with the session cookie) delivers.
      await p.locator('[data-testid=empty-state]').waitFor({ timeout: 20_000 })
      assert.equal(await form.count(), 0)
      assert.equal(await p.evaluate('document.cookie'), '', 'the session cookie is HttpOnly')
      await shot(p, '10-login')
      await p.close()
    } finally {
      admin.kill('SIGKILL')
    }
  })

  it('stops cleanly on Ctrl-C: exit code 0 and no process left', async (t) => {
    const d = dev as Dev
    const ms = await stopDev(d, 'SIGINT')
    assert.match(d.output, /oncekv dev: stopped\./)
    t.diagnostic(`oncekv dev stopped in ${ms} ms`)
  })
})
