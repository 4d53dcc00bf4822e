const { chromium } = require('playwright-core')
;(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
  for (const [user, pw, w, h, name] of [
    ['teamleider', 'demo', 390, 844, 'lead-390'], ['teamleider', 'demo', 1440, 900, 'lead-1440'],
    ['privacy.fg', 'een lang wachtwoord voor fg', 390, 844, 'fg-390'], ['privacy.fg', 'een lang wachtwoord voor fg', 1440, 900, 'fg-1440'],
  ]) {
    const ctx = await browser.newContext({ viewport: { width: w, height: h } })
    const page = await ctx.newPage()
    await page.goto('http://127.0.0.1:18088/login')
    await page.fill('#username', user); await page.fill('#password', pw)
    await page.click('input[type=submit]')
    await page.waitForLoadState('networkidle')
    if (user === 'privacy.fg') { await page.goto('http://127.0.0.1:18088/audit?action=place_hold'); }
    await page.screenshot({ path: `/tmp/shots/${name}.png`, fullPage: user === 'privacy.fg' })
    if (user === 'teamleider') {
      const el = await page.$('#bewaarplicht')
      if (el) await el.screenshot({ path: `/tmp/shots/${name}-holds.png` })
      else console.log('no holds section for', name)
    }
    console.log(name, page.url(), await page.evaluate(() => document.documentElement.scrollWidth))
    await ctx.close()
  }
  await browser.close()
})()
