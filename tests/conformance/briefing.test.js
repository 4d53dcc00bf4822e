// The team lead's briefing page in headless Chromium (Debian's, installed by .ci/run): log in as
// the demo lead, open today's briefing, see the map and the counts, approve a report, sign off.
// Screenshots go to SCREENSHOT_DIR (default ./screenshots).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { chromium } = require('playwright-core')

const BASE = process.env.THOR_URL
if (!BASE) throw new Error('THOR_URL must point at a running thor server started with --demo')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const SHOTS = process.env.SCREENSHOT_DIR || path.join(__dirname, 'screenshots')

test('the lead logs in, reads the briefing with its map, approves a report and signs off', async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM} (.ci/run installs Debian's chromium)`)
  fs.mkdirSync(SHOTS, { recursive: true })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  try {
    const page = await browser.newPage({ viewport: { width: 420, height: 900 } })
    // The page's Content-Security-Policy must not block anything the page itself uses: its
    // stylesheet and the SVGs' styles carry the answer's nonce, and there is no script.
    const blocked = []
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP blocked ${e.violatedDirective} ${e.blockedURI}`)
      })
    })
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|CSP blocked/.test(m.text())) blocked.push(m.text())
    })
    await page.goto(`${BASE}/`)
    assert.match(page.url(), /\/login$/, 'without a session the page asks to log in')
    await page.screenshot({ path: path.join(SHOTS, '1-login.png') })
    await page.fill('#username', 'teamleider')
    await page.fill('#password', 'demo')
    await Promise.all([page.waitForURL(/\/briefing/), page.click('input[type=submit]')])

    // The map of Velsen's wijken and the counts.
    const map = page.locator('#map svg')
    await map.waitFor()
    assert.match(await map.getAttribute('aria-label'), /wijk/i)
    const wijken = await page.locator('#map svg .bs-wijk').count()
    assert.equal(wijken, 10, 'the ten wijken of Velsen are drawn')
    const count = async (key) => (await page.locator(`[data-key=${key}]`).innerText()).trim()
    const token = await (await fetch(`${BASE}/api/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'teamleider', password: 'demo', device_id: 'check' }),
    })).json()
    const api = async (p) => (await fetch(`${BASE}${p}`, { headers: { authorization: `Bearer ${token.token}` } })).json()
    const json = await api('/api/v1/briefing')
    assert.ok(json.violations.total >= 150, 'the demo day is loaded')
    assert.equal(await count('violations'), String(json.violations.total))
    assert.equal(await count('rounds'), `${json.rounds.done}/${json.rounds.planned}`)
    const awaiting = Number(await count('awaiting'))
    assert.ok(awaiting > 0)
    await page.screenshot({ path: path.join(SHOTS, '2-briefing.png'), fullPage: true })
    // The stylesheet applied (the header's colour comes from it), the SVG's own style too.
    assert.equal(await page.locator('header').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(18, 53, 91)')
    assert.notEqual(await page.locator('#map svg .bs-wijk').first().evaluate((e) => getComputedStyle(e).fill), 'rgb(0, 0, 0)')

    // Approve the first report waiting for review.
    const first = page.locator('#beoordelen + table tbody tr').first()
    const id = (await first.getAttribute('id')).replace('report-', '')
    await Promise.all([page.waitForURL(/\/briefing/), first.locator('button.approve').click()])
    assert.equal(Number(await count('awaiting')), awaiting - 1, 'one fewer to review')
    assert.equal(await page.locator(`#report-${id}`).count(), 0)
    const report = await api(`/api/v1/violations/${id}`)
    assert.equal(report.status, 'approved')

    // The review list says how many of how many it shows.
    assert.match(await page.locator('#beoordelen').innerText(), /Te beoordelen \(1–\d+ van \d+\)/)

    // Sign off: with reports still waiting, the page asks once (a checkbox the form requires);
    // then it says who signed, and it is frozen.
    const confirm = page.locator('#signoff-confirm')
    assert.equal(await confirm.count(), 1, 'reports wait for review: the sign-off asks')
    assert.match(await page.locator('label[for=signoff-confirm]').innerText(), /\d+ meldingen op beoordeling wachten/)
    await page.click('#signoff-button')
    assert.match(page.url(), /\/briefing/, 'without the tick the form is not sent')
    assert.match(await page.locator('#signoff').innerText(), /Nog niet afgetekend/)
    await confirm.check()
    await Promise.all([page.waitForURL(/\/briefing/), page.click('#signoff-button')])
    const signed = await page.locator('#signoff').innerText()
    assert.match(signed, /Afgetekend door teamleider/)
    await page.screenshot({ path: path.join(SHOTS, '3-signed.png'), fullPage: true })
    await page.emulateMedia({ media: 'print' })
    await page.screenshot({ path: path.join(SHOTS, '4-print.png'), fullPage: true })
    assert.deepEqual(blocked, [], 'the CSP blocks nothing the page uses')
  } finally {
    await browser.close()
  }
})

// The lead's page on a phone (390×844) and on a desktop (1440×900): nothing is wider than the
// screen, neither the page nor any section in it (a table that does not fit stacks its cells).
test('the briefing fits a phone and a desktop without sideways scrolling', async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  try {
    for (const [width, height] of [[390, 844], [1440, 900]]) {
      const page = await browser.newPage({ viewport: { width, height } })
      await page.goto(`${BASE}/login`)
      await page.fill('#username', 'teamleider')
      await page.fill('#password', 'demo')
      await Promise.all([page.waitForURL(/\/briefing/), page.click('input[type=submit]')])
      await page.locator('#map svg').waitFor()
      const wide = await page.evaluate(() => {
        const out = []
        if (document.documentElement.scrollWidth > window.innerWidth) {
          out.push(`page ${document.documentElement.scrollWidth}px`)
        }
        for (const s of document.querySelectorAll('section')) {
          if (s.scrollWidth > s.clientWidth + 1) out.push(`#${s.id || '?'} ${s.scrollWidth}px in ${s.clientWidth}px`)
        }
        return out
      })
      assert.deepEqual(wide, [], `at ${width}px wider than the screen: ${wide.join(', ')}`)
      // The review buttons are on the screen, not beyond its right edge.
      const approve = page.locator('button.approve').first()
      if (await approve.count()) {
        const box = await approve.boundingBox()
        assert.ok(box.x + box.width <= width, `Goedkeuren at x=${box.x} on a ${width}px screen`)
      }
      await page.screenshot({ path: path.join(SHOTS, `5-briefing-${width}.png`), fullPage: true })
      await page.close()
    }
  } finally {
    await browser.close()
  }
})
