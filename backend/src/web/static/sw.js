// THOR's service worker: keeps the last signed briefing the lead opened, with its map (the map
// is inline SVG in the page), so the briefing opens without a network. Only pages the server
// marks `X-Thor-Briefing: signed` are kept, one copy, replaced by the next. Logging out clears
// it (the logout answer carries `Clear-Site-Data: "cache", "storage"`).
const CACHE = 'thor-briefing-v1'
const KEY = '/briefing?offline=laatst-afgetekend'

self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()))

self.addEventListener('fetch', (event) => {
  const req = event.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || req.mode !== 'navigate' || url.origin !== self.location.origin) return
  if (url.pathname !== '/briefing') return
  event.respondWith((async () => {
    try {
      const res = await fetch(req)
      if (res.ok && res.headers.get('x-thor-briefing') === 'signed') {
        const cache = await caches.open(CACHE)
        await cache.put(KEY, res.clone())
      }
      return res
    } catch (err) {
      const cached = await (await caches.open(CACHE)).match(KEY)
      if (!cached) throw err
      const saved = cached.headers.get('date') || ''
      const html = (await cached.text()).replace('<main>',
        `<main><p class="offline" id="offline" role="status">Offline: dit is de laatst afgetekende briefing die op deze telefoon bewaard is${saved ? ` (opgehaald ${new Date(saved).toLocaleString('nl-NL')})` : ''}. Beoordelen en aftekenen kan weer zodra er verbinding is.</p>`)
      return new Response(html, { status: 200, headers: cached.headers })
    }
  })())
})
