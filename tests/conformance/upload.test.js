// Conformance: the real tus-js-client (pinned in package.json) uploads a photo to a running thor
// server, is interrupted, resumes from the offset the server kept, and the stored original has
// the declared SHA-256; sends sha1 and sha256 Upload-Checksums; sends no byte at all when the
// photo is already stored; and stops (no retry) where the server refuses. Run by .ci/run with
// THOR_URL (a server started with --demo).
//
// tus-js-client 4.3.1 has no checksum option: the app adds Upload-Checksum in its httpStack,
// the client's own transport hook (see SYNC.md, "Photos"); the same wrapper counts what went
// over the wire.
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

// The client's default transport, wrapped: adds `Upload-Checksum: <algo> <base64>` to every
// request with a body, and counts requests per method and body bytes sent.
function wireStack({ checksum = null, corrupt = false } = {}) {
  const inner = new tus.DefaultHttpStack()
  const wire = { requests: {}, bodyBytes: 0 }
  return {
    wire,
    getName: () => 'CountingChecksumStack',
    createRequest(method, url) {
      const req = inner.createRequest(method, url)
      const send = req.send.bind(req)
      req.send = (body = null) => {
        const m = req.getMethod()
        wire.requests[m] = (wire.requests[m] || 0) + 1
        if (body != null && body.length) {
          wire.bodyBytes += body.length
          if (checksum) {
            const digest = crypto.createHash(checksum).update(corrupt ? Buffer.from('x') : body).digest('base64')
            req.setHeader('Upload-Checksum', `${checksum} ${digest}`)
          }
        }
        return send(body)
      }
      return req
    },
  }
}

function uploadUrlOf(photoId) {
  return `${BASE}/api/v1/uploads/${photoId}`
}

async function reportAndPhotos(token, bytes, n = 1) {
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
  const now = new Date(Date.now() - 60_000).toISOString()
  const report = await post(token, '/api/v1/violations', {
    id: crypto.randomUUID(), category: 'afval', observed_at: now,
    location: { lat: 52.4599, lon: 4.6218, accuracy_m: 5, source: 'gps' },
    description: 'Huisvuilzak naast de container', outcome: 'warning',
  })
  const ids = []
  for (let i = 0; i < n; i++) {
    const id = crypto.randomUUID()
    await post(token, '/api/v1/photos', {
      id, violation_id: report.id, sha256, size_bytes: bytes.length, mime: 'image/jpeg',
      captured_at: now, lat: 52.4599, lon: 4.6218, accuracy_m: 5,
    })
    ids.push(id)
  }
  return { sha256, ids }
}

async function photoRecord(token, id) {
  const r = await fetch(`${BASE}/api/v1/photos/${id}`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(r.status, 200)
  return r.json()
}

async function storedSha(token, id) {
  const r = await fetch(`${BASE}/api/v1/photos/${id}/original`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(r.status, 200)
  return crypto.createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex')
}

// A real photo of the corpus, made unique by bytes after its end-of-image marker (decoders
// ignore them): the server stores identical files once and a photo record whose file is already
// stored is complete at once, so each test (and each run on a long-lived server) needs its own.
function corpusPhoto() {
  if (!fs.existsSync(PHOTO)) {
    // A missing corpus is a failure, never a silent pass.
    throw new Error(`the photo corpus is missing: ${PHOTO}`)
  }
  return Buffer.concat([fs.readFileSync(PHOTO), Buffer.from(`thor-conformance ${crypto.randomUUID()}`)])
}

// Runs an upload to its end: resolves with 'success' or rejects with the client's error.
function run(file, opts) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(file, { ...opts, onError: reject, onSuccess: () => resolve(u) })
    u.start()
  })
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
  const bytes = corpusPhoto()
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

for (const algo of ['sha1', 'sha256']) {
  test(`tus-js-client with ${algo} Upload-Checksum: aborted, resumed from HEAD, stored whole`, async () => {
    const bytes = corpusPhoto()
    const token = await login('handhaver', `tus-${algo}-${crypto.randomUUID()}`)
    const { sha256, ids: [photoId] } = await reportAndPhotos(token, bytes)
    const stack = wireStack({ checksum: algo })
    const common = {
      endpoint: `${BASE}/api/v1/uploads`,
      uploadUrl: uploadUrlOf(photoId),
      headers: { authorization: `Bearer ${token}` },
      metadata: { photo_id: photoId, filetype: 'image/jpeg' },
      chunkSize: 64 * 1024,
      retryDelays: [0, 200, 500],
      httpStack: stack,
    }
    await upload(bytes, { ...common, abortAfter: 0.4 })
    const kept = (await photoRecord(token, photoId)).upload_offset
    assert.ok(kept > 0 && kept < bytes.length, `part of the file is kept (${kept} of ${bytes.length})`)
    assert.equal(kept % (64 * 1024), 0, 'only whole checksummed chunks are kept')
    const before = stack.wire.bodyBytes
    let resumedFrom = null
    await run(bytes, {
      ...common,
      onChunkComplete: (chunk, sent) => { if (resumedFrom === null) resumedFrom = sent - chunk },
    })
    assert.equal(resumedFrom, kept, 'resumed where the server had stopped')
    assert.equal(stack.wire.bodyBytes - before, bytes.length - kept, 'the rest, and only the rest, was sent')
    const rec = await photoRecord(token, photoId)
    assert.equal(rec.upload_state, 'complete')
    assert.equal(await storedSha(token, photoId), sha256)
  })

  test(`tus-js-client stops on a chunk that does not match its ${algo} checksum (460, not retried)`, async () => {
    const bytes = corpusPhoto()
    const token = await login('handhaver', `tus-bad-${algo}-${crypto.randomUUID()}`)
    const { ids: [photoId] } = await reportAndPhotos(token, bytes)
    const stack = wireStack({ checksum: algo, corrupt: true })
    const err = await run(bytes, {
      endpoint: `${BASE}/api/v1/uploads`, uploadUrl: uploadUrlOf(photoId),
      headers: { authorization: `Bearer ${token}` }, metadata: { photo_id: photoId },
      chunkSize: 64 * 1024, retryDelays: [0, 100], httpStack: stack,
    }).then(() => null, (e) => e)
    assert.ok(err, 'the upload failed')
    assert.equal(err.originalResponse.getStatus(), 460)
    assert.equal(stack.wire.requests.PATCH, 1, 'one PATCH, not retried')
    assert.equal((await photoRecord(token, photoId)).upload_offset, 0, 'the bad chunk was dropped')
  })
}

test('tus-js-client sends no byte for a photo that is already stored (same id, or the same file under another id)', async () => {
  const bytes = corpusPhoto()
  const token = await login('handhaver', `tus-dedupe-${crypto.randomUUID()}`)
  // Two records of the same file (the same photo on one report twice), both synced before
  // any byte is sent; the first is uploaded.
  const { sha256, ids: [first, second] } = await reportAndPhotos(token, bytes, 2)
  const opts = (photoId, stack) => ({
    endpoint: `${BASE}/api/v1/uploads`,
    uploadUrl: uploadUrlOf(photoId),
    headers: { authorization: `Bearer ${token}` },
    metadata: { photo_id: photoId, filetype: 'image/jpeg' },
    retryDelays: [0, 200, 500],
    httpStack: stack,
  })
  const firstStack = wireStack()
  await run(bytes, opts(first, firstStack))
  assert.equal(firstStack.wire.bodyBytes, bytes.length, 'the first upload sends the file once')
  assert.equal(await storedSha(token, first), sha256)

  // The same id again (the app did not hear the last answer): HEAD says it is all there.
  for (const photoId of [first, second]) {
    const stack = wireStack()
    let progress = null
    await run(bytes, { ...opts(photoId, stack), onProgress: (sent, total) => { progress = [sent, total] } })
    assert.equal(stack.wire.requests.PATCH || 0, 0, `no PATCH for ${photoId}`)
    assert.equal(stack.wire.requests.POST || 0, 0, `no POST for ${photoId}`)
    assert.equal(stack.wire.bodyBytes, 0, 'zero bytes sent the second time')
    assert.deepEqual(progress, [bytes.length, bytes.length], 'the app sees 100 %')
    const rec = await photoRecord(token, photoId)
    assert.equal(rec.upload_state, 'complete')
  }
  assert.equal(await storedSha(token, second), sha256)
})

test('tus-js-client parallelUploads is refused without retries (no concatenation)', async () => {
  const bytes = corpusPhoto()
  const token = await login('handhaver', `tus-parallel-${crypto.randomUUID()}`)
  const { ids: [photoId] } = await reportAndPhotos(token, bytes)
  const stack = wireStack()
  const err = await run(bytes, {
    endpoint: `${BASE}/api/v1/uploads`,
    headers: { authorization: `Bearer ${token}` },
    metadata: { photo_id: photoId }, metadataForPartialUploads: { photo_id: photoId },
    parallelUploads: 2, retryDelays: [0, 100, 200], httpStack: stack,
  }).then(() => null, (e) => e)
  assert.ok(err, 'the upload failed')
  assert.equal(err.originalResponse.getStatus(), 400)
  const problem = JSON.parse(err.originalResponse.getBody())
  assert.ok(problem.errors.some((e) => e.field === 'Upload-Concat'), problem.detail)
  assert.equal(stack.wire.requests.POST, 2, 'one POST per part, none retried')
  assert.equal(stack.wire.bodyBytes, 0)
})

test('tus-js-client stops on a photo record the sync refused (422 saying why, not retried)', async () => {
  const bytes = corpusPhoto()
  const token = await login('handhaver', `tus-refused-${crypto.randomUUID()}`)
  const photoId = crypto.randomUUID()
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
  const push = await fetch(`${BASE}/api/v1/sync/push`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ changes: { photos: { created: [{
      id: photoId, violation_id: crypto.randomUUID(), sha256, size_bytes: bytes.length,
      mime: 'image/jpeg', captured_at: Date.now() - 60_000, lat: 52.4599, lon: 4.6218, accuracy_m: 5,
    }], updated: [], deleted: [] } } }),
  })
  assert.equal(push.status, 200)
  assert.deepEqual((await push.json()).experimentalRejectedIds.photos, [photoId])
  const stack = wireStack()
  const err = await run(bytes, {
    endpoint: `${BASE}/api/v1/uploads`, uploadUrl: uploadUrlOf(photoId),
    headers: { authorization: `Bearer ${token}` }, metadata: { photo_id: photoId },
    retryDelays: [0, 100, 200], httpStack: stack,
  }).then(() => null, (e) => e)
  assert.ok(err, 'the upload failed')
  assert.equal(err.originalResponse.getStatus(), 422)
  assert.equal(err.originalResponse.getHeader('Content-Type'), 'application/problem+json')
  const problem = JSON.parse(err.originalResponse.getBody())
  assert.match(problem.detail, /refused/)
  assert.equal(stack.wire.requests.POST, 1, 'one POST, not retried')
  assert.equal(stack.wire.bodyBytes, 0)
})
