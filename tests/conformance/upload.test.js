// Conformance: the real tus-js-client (pinned in package.json) uploads a photo to a running thor
// server, is interrupted, resumes from the offset the server kept, and the stored original has
// the declared SHA-256. Run by .ci/run with THOR_URL (a server started with --demo).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const tus = require('tus-js-client')

const BASE = process.env.THOR_URL
if (!BASE) throw new Error('THOR_URL must point at a running thor server started with --demo')
const CORPUS = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'photos')
const PHOTO = path.join(CORPUS, 'orientation_1_recurser_Landscape_1.jpg')

async function login(username, deviceId) {
  const r = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'demo', device_id: deviceId }),
  })
  assert.equal(r.status, 200, `login ${username}`)
  return (await r.json()).token
}

async function post(token, p, body) {
  const r = await fetch(BASE + p, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  assert.equal(r.status, 201, `${p}: ${await r.clone().text()}`)
  return r.json()
}

function upload(file, opts) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(file, { ...opts, onError: reject, onSuccess: () => resolve(u) })
    if (opts.abortAfter) {
      u.options.onProgress = (sent, total) => {
        if (sent >= opts.abortAfter * total) {
          u.abort().then(() => resolve(u))
        }
      }
    }
    u.start()
  })
}

test('tus-js-client resumes an interrupted upload and the stored original is the file', async () => {
  if (!fs.existsSync(PHOTO)) {
    if (process.env.CI === 'true') throw new Error(`the photo corpus is missing: ${PHOTO}`)
    console.error(`\n*** SKIPPED: the photo corpus is not at ${CORPUS} ***\n`)
    return
  }
  const bytes = fs.readFileSync(PHOTO)
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
  const token = await login('handhaver', `tus-${crypto.randomUUID()}`)
  const now = new Date(Date.now() - 60_000).toISOString()
  const report = await post(token, '/api/v1/violations', {
    id: crypto.randomUUID(), category: 'afval', observed_at: now,
    location: { lat: 52.4599, lon: 4.6218, accuracy_m: 5, source: 'gps' },
    description: 'Huisvuilzak naast de container', outcome: 'warning',
  })
  const photoId = crypto.randomUUID()
  await post(token, '/api/v1/photos', {
    id: photoId, violation_id: report.id, sha256, size_bytes: bytes.length, mime: 'image/jpeg',
    captured_at: now, lat: 52.4599, lon: 4.6218, accuracy_m: 5,
  })

  const common = {
    endpoint: `${BASE}/api/v1/uploads`,
    headers: { authorization: `Bearer ${token}` },
    metadata: { photo_id: photoId, filetype: 'image/jpeg', filename: path.basename(PHOTO) },
    chunkSize: 64 * 1024,
    retryDelays: [0, 200, 500],
  }
  // First attempt: the phone loses its network after about 40 %.
  const first = await upload(bytes, { ...common, abortAfter: 0.4 })
  assert.ok(first.url, 'the upload was created')
  const head = await fetch(BASE + new URL(first.url, BASE).pathname, {
    method: 'HEAD', headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' },
  })
  const kept = Number(head.headers.get('upload-offset'))
  assert.ok(kept > 0 && kept < bytes.length, `the server kept part of the file (${kept} of ${bytes.length})`)

  // Second attempt: resumes at the server's offset (tus-js-client asks HEAD first).
  let resumedFrom = null
  await upload(bytes, {
    ...common,
    uploadUrl: first.url,
    onUploadUrlAvailable: () => {},
    onChunkComplete: (chunk, sent) => { if (resumedFrom === null) resumedFrom = sent - chunk },
  })
  assert.equal(resumedFrom, kept, 'the second attempt started where the server had stopped')

  const rec = await (await fetch(`${BASE}/api/v1/photos/${photoId}`, { headers: { authorization: `Bearer ${token}` } })).json()
  assert.equal(rec.upload_state, 'complete')
  assert.equal(rec.sha256, sha256)
  const original = Buffer.from(await (await fetch(`${BASE}/api/v1/photos/${photoId}/original`, {
    headers: { authorization: `Bearer ${token}` },
  })).arrayBuffer())
  assert.equal(crypto.createHash('sha256').update(original).digest('hex'), sha256, 'the stored original is the file')
})
