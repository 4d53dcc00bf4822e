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

const crypto = require('node:crypto')
const CORPUS_PHOTO = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'photos', 'orientation_1_recurser_Landscape_1.jpg')
const LAUNCH = {
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
}

async function apiLogin(username) {
  const r = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'demo', device_id: `check-${username}` }),
  })
  assert.equal(r.status, 200, `login ${username}`)
  return (await r.json()).token
}

function apiOf(token) {
  return async (p, init = {}) => {
    const r = await fetch(`${BASE}${p}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) } })
    const text = await r.text()
    return { status: r.status, body: text ? JSON.parse(text) : null }
  }
}

// An officer's report with one photo of the corpus (made unique), uploaded in one tus PATCH;
// waits until the server has made the photo's thumbnail and preview.
async function reportWithPhoto(api) {
  if (!fs.existsSync(CORPUS_PHOTO)) throw new Error(`the photo corpus is missing: ${CORPUS_PHOTO}`)
  const bytes = Buffer.concat([fs.readFileSync(CORPUS_PHOTO), Buffer.from(`thor-lead ${crypto.randomUUID()}`)])
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
  const now = new Date(Date.now() - 60_000).toISOString()
  const json = { 'content-type': 'application/json' }
  const report = await api('/api/v1/violations', {
    method: 'POST', headers: json,
    body: JSON.stringify({
      id: crypto.randomUUID(), category: 'afval', observed_at: now, status: 'submitted', sanction: 'waarschuwing_schriftelijk',
      location: { lat: 52.4599, lon: 4.6218, accuracy_m: 5, source: 'gps' },
      description: 'Huisvuilzak naast de container, foto gemaakt', outcome: 'warning',
    }),
  })
  assert.equal(report.status, 201, JSON.stringify(report.body))
  const photo = crypto.randomUUID()
  const created = await api('/api/v1/photos', {
    method: 'POST', headers: json,
    body: JSON.stringify({ id: photo, violation_id: report.body.id, sha256, size_bytes: bytes.length, mime: 'image/jpeg', captured_at: now, lat: 52.4599, lon: 4.6218, accuracy_m: 5 }),
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const sent = await api(`/api/v1/uploads/${photo}`, {
    method: 'PATCH', body: bytes,
    headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
  })
  assert.equal(sent.status, 204, JSON.stringify(sent.body))
  for (let i = 0; i < 100; i++) {
    const p = await api(`/api/v1/photos/${photo}`)
    if (p.body.derivative_state === 'done') return { report: report.body, photo, sha256 }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error('the photo\'s derivatives were not made within 20 s')
}

// axe-core (npm, pinned) on the page as it is: no serious or critical violation. The script is
// injected, so this context ignores the page's CSP (the page itself loads no inline script).
async function axe(browser, url, cookies) {
  const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: 390, height: 844 } })
  await ctx.addCookies(cookies)
  const page = await ctx.newPage()
  await page.goto(url)
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') })
  const result = await page.evaluate(async () => window.axe.run(document))
  await ctx.close()
  assert.ok(result.passes.length > 10, `axe ran its rules on ${url} (${result.passes.length} passed)`)
  console.log(`axe ${url}: ${result.passes.length} rules passed, ${result.violations.length} violated (${result.violations.map((v) => `${v.id}:${v.impact}`).join(', ') || 'none'})`)
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)
}

test('the lead filters by wijk, opens a report with its photo, approves, undoes, and a stale approve explains itself in Dutch', async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM} (.ci/run installs Debian's chromium)`)
  fs.mkdirSync(SHOTS, { recursive: true })
  const officer = apiOf(await apiLogin('handhaver'))
  const lead = apiOf(await apiLogin('teamleider'))
  const { report, photo, sha256 } = await reportWithPhoto(officer)
  assert.ok(report.wijk && report.wijk.code, 'the report lies in a wijk')
  const browser = await chromium.launch(LAUNCH)
  try {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
    const page = await context.newPage()
    await page.goto(`${BASE}/login`)
    await page.fill('#username', 'teamleider')
    await page.fill('#password', 'demo')
    await Promise.all([page.waitForURL(/\/briefing/), page.click('input[type=submit]')])

    // Filter by the report's wijk and its officer (the per-officer view): the list holds their
    // waiting reports, no others.
    await page.selectOption('form.filters select[name=wijk]', report.wijk.code)
    await page.selectOption('form.filters select[name=handhaver]', report.created_by)
    await Promise.all([page.waitForURL(/wijk=/), page.click('form.filters button[type=submit]')])
    const today = new Date().toLocaleDateString('sv-SE', { timeZone: 'Europe/Amsterdam' })
    const waiting = await lead(`/api/v1/violations?date=${today}&wijk=${report.wijk.code}&officer=${report.created_by}&status=submitted&limit=200`)
    assert.equal(waiting.status, 200)
    const heading = await page.locator('#beoordelen').innerText()
    assert.match(heading, new RegExp(`van ${waiting.body.items.length}\\)`), `${heading} for ${waiting.body.items.length} in the wijk`)
    const listed = await page.locator('#beoordelen + table tbody tr[id^=report-]').evaluateAll((rows) => rows.map((r) => r.id.replace('report-', '')))
    const inWijk = new Set(waiting.body.items.map((v) => v.id))
    assert.ok(listed.length > 0 && listed.every((id) => inWijk.has(id)), 'only reports of the wijk and officer are listed')
    assert.ok(listed.includes(report.id), 'the new report is listed')
    await page.screenshot({ path: path.join(SHOTS, '6-filtered-390.png'), fullPage: true })

    // The report's own page: its photo (through the page's session), place, history.
    await Promise.all([page.waitForURL(/\/briefing\/melding\//), page.locator(`#report-${report.id} a.open`).click()])
    const preview = page.locator('#fotos img.preview')
    await preview.waitFor()
    assert.equal(await preview.getAttribute('src'), `/api/v1/photos/${photo}/preview`)
    assert.ok(await preview.evaluate((img) => img.complete && img.naturalWidth > 0), 'the photo is shown')
    assert.match(await page.locator('#fotos').innerText(), new RegExp(sha256))
    assert.equal(await page.locator('#plaats svg .bs-pts .bs-pt').count(), 1, 'the place on a small map')
    assert.match(await page.locator('#report').innerText(), /Mehmet Yilmaz/)
    assert.match(await page.locator('#geschiedenis').innerText(), /aangemaakt/)
    await page.screenshot({ path: path.join(SHOTS, '7-report-390.png'), fullPage: true })

    // Approve: back to the list, which says what was decided and offers to undo it.
    await Promise.all([page.waitForURL(/gedaan=/), page.click('#beoordeling button.approve')])
    assert.match(await page.locator('#gedaan').innerText(), /is goedgekeurd/)
    assert.equal((await lead(`/api/v1/violations/${report.id}`)).body.status, 'approved')
    assert.equal(await page.locator(`#report-${report.id}`).count(), 0, 'no longer waiting')
    await page.screenshot({ path: path.join(SHOTS, '8-approved-390.png') })
    await Promise.all([page.waitForURL(/\/briefing/), page.click('#undo')])
    const back = (await lead(`/api/v1/violations/${report.id}`)).body
    assert.equal(back.status, 'submitted', 'undone')
    assert.equal(back.reviewed_by, null)
    assert.equal(await page.locator(`#report-${report.id} button.approve`).count(), 1, 'waiting again')

    // A stale decision (another tab, or a colleague, approved it first; this one rejects): a
    // page in Dutch, not JSON. (Approving twice is no conflict: the second changes nothing.)
    const other = await context.newPage()
    await other.goto(page.url())
    await Promise.all([page.waitForURL(/gedaan=/), page.locator(`#report-${report.id} button.approve`).click()])
    await other.locator(`#report-${report.id} details.reject summary`).click()
    await other.fill(`#reason-${report.id}`, 'Foto onduidelijk')
    const stale = await Promise.all([
      other.waitForNavigation(),
      other.locator(`#report-${report.id} details.reject button.danger`).click(),
    ])
    assert.equal(stale[0].status(), 409)
    assert.equal((await lead(`/api/v1/violations/${report.id}`)).body.status, 'approved', 'the first decision stands')
    assert.match(await other.locator('#probleem h2').innerText(), /Intussen veranderd/)
    assert.equal(await other.locator('#back').getAttribute('href'), new URL(page.url()).pathname + new URL(page.url()).search.replace(/&gedaan=[^&]*/, ''), 'the way back is the list it came from')
    await other.screenshot({ path: path.join(SHOTS, '9-stale-390.png') })
    const missing = await other.goto(`${BASE}/briefing/melding/${crypto.randomUUID()}`)
    assert.equal(missing.status(), 404)
    assert.match(await other.locator('#probleem h2').innerText(), /Niet gevonden/)

    // The case: the briefing lists it among the open cases with its deadline; the lead finishes
    // its track on the report's page and the letter is made from the record.
    await page.goto(`${BASE}/briefing`)
    assert.match(await page.locator('#zaken h2').innerText(), /Open zaken: \d+/)
    assert.match(await page.locator('#zaken tbody tr').first().innerText(), /\d\d-\d\d-\d{4}/, 'each with its deadline')
    await page.goto(`${BASE}/briefing/melding/${report.id}`)
    assert.match(await page.locator('#afdoening h2').innerText(), /Schriftelijke waarschuwing/)
    await Promise.all([page.waitForURL(/\/briefing\/melding\//), page.click('#take-step')])
    assert.match(await page.locator('#afdoening').innerText(), /De afhandeling is rond/)
    await page.screenshot({ path: path.join(SHOTS, '10-case-finished-390.png'), fullPage: true })
    const letter = await context.request.get(`${BASE}/api/v1/cases/${report.id}/documents/waarschuwingsbrief`)
    assert.equal(letter.status(), 200)
    assert.equal(letter.headers()['content-type'], 'application/pdf')
    assert.ok((await letter.body()).subarray(0, 5).toString() === '%PDF-')
    const open = await lead('/api/v1/cases')
    assert.ok(open.body.every((c) => c.id !== report.id), 'a finished case leaves the open cases')

    // Accessibility: axe-core finds nothing serious on the briefing and on a report.
    const cookies = await context.cookies()
    assert.deepEqual(await axe(browser, `${BASE}/briefing`, cookies), [], 'axe on the briefing')
    assert.deepEqual(await axe(browser, `${BASE}/briefing/melding/${report.id}`, cookies), [], 'axe on a report')
  } finally {
    await browser.close()
  }
})

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
    // stylesheet and the SVGs' styles carry the answer's nonce, its one script is thor's own.
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

    // Offline: the service worker kept the signed briefing with its map; a reload without a
    // network shows it, saying it is the offline copy.
    await page.evaluate(async () => { await navigator.serviceWorker.ready })
    await page.reload()
    assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'the service worker controls the page')
    await page.context().setOffline(true)
    try {
      await page.reload()
      assert.match(await page.locator('#offline').innerText(), /Offline: dit is de laatst afgetekende briefing/)
      assert.match(await page.locator('#signoff').innerText(), /Afgetekend door/)
      assert.equal(await page.locator('#map svg .bs-wijk').count(), 10, 'with its map')
      await page.screenshot({ path: path.join(SHOTS, '3b-offline.png') })
    } finally {
      await page.context().setOffline(false)
    }
    await page.emulateMedia({ media: 'print' })
    await page.screenshot({ path: path.join(SHOTS, '4-print.png'), fullPage: true })
    // Printed on A4: at most three pages, without the review list; youth data marked.
    const pdf = await page.pdf({ format: 'A4' })
    fs.writeFileSync(path.join(SHOTS, '4-print.pdf'), pdf)
    const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length
    assert.ok(pages >= 1 && pages <= 3, `the printed briefing has ${pages} pages`)
    assert.equal(await page.locator('#meldingen').evaluate((e) => getComputedStyle(e).display), 'none', 'the review list is not printed')
    assert.match(await page.locator('#jeugd .wpg-mark').first().innerText(), /Vertrouwelijk — Wpg/)
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
