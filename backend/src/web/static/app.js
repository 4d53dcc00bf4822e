// Registers the service worker that keeps the last signed briefing for offline use (sw.js).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {})
}
