// Conformance: the real WatermelonDB sync engine (0.28.0, LokiJS adapter in memory) against a
// running thor server (THOR_URL, demo accounts). Run by .ci/run: `npm ci && npm test`.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { schemaMigrations } = require('@nozbe/watermelondb/Schema/migrations')
const { thorSync, makePull, pinBase } = require('./thor-sync')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')

// THOR ids are UUIDs: an app sets WatermelonDB's id generator once at start.
setGenerator(() => crypto.randomUUID())

const BASE = process.env.THOR_URL
if (!BASE) throw new Error('THOR_URL must point at a running thor server started with --demo')

const opt = (name, type) => ({ name, type, isOptional: true })
const schema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'violations',
      columns: [
        { name: 'category', type: 'string' }, opt('feitcode', 'string'), { name: 'observed_at', type: 'number' },
        { name: 'lat', type: 'number' }, { name: 'lon', type: 'number' }, { name: 'accuracy_m', type: 'number' },
        { name: 'location_source', type: 'string' }, opt('fix_time', 'number'), { name: 'description', type: 'string' },
        { name: 'outcome', type: 'string' }, opt('plate', 'string'), opt('driver_present', 'boolean'), opt('sanction', 'string'),
        { name: 'officer_ids', type: 'string' }, { name: 'status', type: 'string' }, opt('review_note', 'string'),
        opt('reviewed_by', 'string'), opt('reviewed_at', 'number'), opt('wijk_code', 'string'), opt('buurt_code', 'string'),
        opt('team_id', 'string'), opt('created_by', 'string'), opt('flags', 'string'), opt('server_rev', 'number'), opt('base_rev', 'number'),
      ],
    }),
    tableSchema({ name: 'categories', columns: [{ name: 'name', type: 'string' }] }),
  ],
})
// No migrations yet, but the app declares that it has them, so migration syncs are on.
const migrations = schemaMigrations({ migrations: [] })
class Violation extends Model { static table = 'violations' }
class Category extends Model { static table = 'categories' }

async function api(path, token, init = {}) {
  return fetch(BASE + path, { ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${token}` } })
}

async function login(username, deviceId) {
  const r = await fetch(`${BASE}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'demo', device_id: deviceId }),
  })
  assert.equal(r.status, 200, `login ${username}`)
  return (await r.json()).token
}

/** A phone: its own database and the adapter of SYNC.md (thor-sync.js). */
async function device(username, { pageSize = 3 } = {}) {
  const deviceId = `conformance-${crypto.randomUUID()}`
  const token = await login(username, deviceId)
  const db = new Database({
    adapter: new LokiJSAdapter({ schema, migrations, useWebWorker: false, useIncrementalIndexedDB: false, extraLokiOptions: { autosave: false } }),
    modelClasses: [Violation, Category],
  })
  const hooks = { afterPush: null }
  const onPush = (answer) => {
    pushes.push(answer)
    if (hooks.afterPush) { const h = hooks.afterPush; hooks.afterPush = null; h(answer) }
  }
  const pushes = []
  const phoneApi = (path, init) => api(path, token, init)
  const sha256 = async (s) => crypto.createHash('sha256').update(s).digest('hex')
  const sync = () => thorSync({ database: db, api: phoneApi, sha256, deviceId, appVersion: 'conformance', pageSize, onPush })
  const create = (fields) => db.write(() => db.get('violations').create((v) => {
    Object.assign(v._raw, {
      category: 'afval', feitcode: 'H004', observed_at: Date.now() - 120000, lat: 52.4599, lon: 4.6218,
      accuracy_m: 6.5, location_source: 'gps', description: 'Zakken naast de container', outcome: 'warning',
      status: 'concept', officer_ids: '[]', ...fields,
    })
  }))
  const edit = (id, fields) => db.write(async () => {
    const v = await db.get('violations').find(id)
    await v.update((r) => {
      pinBase(r._raw)
      for (const [k, val] of Object.entries(fields)) r._setRaw(k, val)
    })
  })
  const find = async (id) => { try { return (await db.get('violations').find(id))._raw } catch { return null } }
  return { db, token, deviceId, api: phoneApi, sync, create, edit, find, hooks, pushes }
}

async function serverReport(token, id) {
  const r = await api(`/api/v1/violations/${id}`, token)
  return r.status === 200 ? r.json() : null
}

test('two devices create and pull', async () => {
  const a = await device('handhaver')
  const b = await device('teamleider')
  await a.sync(); await b.sync()
  const created = await a.create({})
  await a.sync()
  await b.sync()
  const seen = await b.find(created.id)
  assert.ok(seen, 'B has the report A created')
  assert.equal(seen.wijk_code, 'WK045301')
  assert.ok(seen.server_rev > 0)
  assert.equal((await b.db.get('categories').query().fetch()).length, 4, 'reference data came along')
})

test('concurrent edits to different fields merge', async () => {
  const a = await device('handhaver')
  const b = await device('teamleider')
  const v = await a.create({})
  await a.sync(); await b.sync()
  await a.edit(v.id, { description: 'Zakken en een matras' })
  await b.edit(v.id, { outcome: 'removed' })
  await a.sync(); await b.sync(); await a.sync()
  for (const d of [a, b]) {
    const r = await d.find(v.id)
    assert.equal(r.description, 'Zakken en een matras')
    assert.equal(r.outcome, 'removed')
  }
  const s = await serverReport(a.token, v.id)
  assert.equal(s.description, 'Zakken en een matras')
  assert.equal(s.outcome, 'removed')
})

test('the same field edited on two devices gives a conflict record', async () => {
  const a = await device('handhaver')
  const b = await device('teamleider')
  const v = await a.create({})
  await a.sync(); await b.sync()
  await a.edit(v.id, { description: 'versie A' })
  await b.edit(v.id, { description: 'versie B' })
  await a.sync(); await b.sync(); await a.sync()
  assert.equal((await a.find(v.id)).description, 'versie B', 'the last received value is applied everywhere')
  const conflicts = await (await api('/api/v1/conflicts?status=open', b.token)).json()
  const c = conflicts.find((c) => c.record_id === v.id && c.field === 'description')
  assert.ok(c, 'the team lead sees the conflict')
  assert.equal(c.server_value, 'versie A')
  assert.equal(c.client_value, 'versie B')
})

test('deletes propagate', async () => {
  const a = await device('handhaver')
  const b = await device('handhaver')
  const v = await a.create({})
  await a.sync(); await b.sync()
  assert.ok(await b.find(v.id))
  await a.db.write(async () => (await a.db.get('violations').find(v.id)).markAsDeleted())
  await a.sync(); await b.sync()
  assert.equal(await b.find(v.id), null)
  assert.equal(await serverReport(a.token, v.id), null)
})

test('a push whose answer was lost is retried without duplicates', async () => {
  const a = await device('handhaver')
  await a.sync()
  const v = await a.create({})
  a.hooks.afterPush = () => { throw new Error('connection dropped after the server applied the push') }
  await assert.rejects(a.sync())
  assert.ok(await serverReport(a.token, v.id), 'the server applied it')
  await a.sync()
  const list = await (await api(`/api/v1/violations?limit=500`, a.token)).json()
  assert.equal(list.items.filter((x) => x.id === v.id).length, 1)
  assert.equal((await a.find(v.id))._status, 'synced')
})

test('an expired cursor leads to a full resync', async () => {
  const a = await device('handhaver')
  const old = await a.create({})
  await a.sync()
  await a.db.adapter.setLocal('__watermelon_last_pulled_at', '999999999')
  const fresh = await a.create({ description: 'offline gemaakt' })
  await a.sync()
  assert.ok(await a.find(old.id), 'synced data survives the replacement pull')
  assert.equal((await a.find(fresh.id))._status, 'synced', 'local changes are pushed after it')
  assert.ok(await serverReport(a.token, fresh.id))
})

// WatermelonDB's own complaints ("[Sync] Server wants client to update record … but it doesn't
// exist locally", "… create record … but it already exists locally") while `fn` runs.
async function syncComplaints(fn) {
  const seen = []
  const { error, warn } = console
  console.error = (...a) => { seen.push(a.map(String).join(' ')) }
  console.warn = (...a) => { seen.push(a.map(String).join(' ')) }
  try { await fn() } finally { console.error = error; console.warn = warn }
  return seen.filter((s) => s.includes('[Sync]'))
}

function within(ms, promise, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not end in ${ms} ms`)), ms) }),
  ])
}

test('create → sync → submit → sync on one phone makes exactly zero conflict records', async () => {
  const a = await device('handhaver')
  await a.sync()
  const v = await a.create({})
  const complaints = await syncComplaints(async () => {
    await a.sync()
    await a.edit(v.id, { status: 'submitted', description: 'Zakken en een matras' })
    await a.sync()
    await a.edit(v.id, { description: 'Zakken, een matras en een stoel' })
    // The answer of this push is lost; the officer edits once more before the retry.
    a.hooks.afterPush = () => { throw new Error('connection dropped after the server applied the push') }
    await assert.rejects(a.sync())
    await a.edit(v.id, { description: 'Zakken, een matras, een stoel en een kast' })
    await a.sync()
  })
  const conflicts = await (await api('/api/v1/conflicts?status=all', a.token)).json()
  assert.equal(conflicts.filter((c) => c.record_id === v.id).length, 0, JSON.stringify(conflicts))
  const s = await serverReport(a.token, v.id)
  assert.equal(s.status, 'submitted')
  assert.equal(s.description, 'Zakken, een matras, een stoel en een kast')
  assert.deepEqual(complaints, [], 'WatermelonDB (default settings) has nothing to complain about')
})

// A case recorded offline: the officer chooses the afdoening in the street, the phone syncs
// later; the server checks the choice against the outcome and the feitcode's track and the case
// is open for the office. A choice the track does not allow is refused for that record alone and
// stays on the phone, unsynced.
test('an officer records a case offline with its afdoening and syncs it', async () => {
  const a = await device('handhaver')
  await a.sync()
  const good = await a.create({ outcome: 'removed', sanction: 'kostenverhaal', status: 'submitted', description: 'Matras naast de container, opgeruimd' })
  const bad = await a.create({ outcome: 'warning', sanction: 'mulder', status: 'submitted' })
  const answers = a.pushes.length
  await a.sync()
  const answer = a.pushes[answers]
  assert.ok(answer, 'the push was answered')
  const refused = answer.rejected.find((r) => r.id === bad.id)
  assert.ok(refused, JSON.stringify(answer.rejected))
  assert.match(JSON.stringify(refused), /sanction/)
  assert.deepEqual(answer.experimentalRejectedIds.violations, [bad.id], 'the bad one stays on the phone')
  assert.equal(await serverReport(a.token, bad.id), null)
  const s = await serverReport(a.token, good.id)
  assert.equal(s.sanction, 'kostenverhaal')
  const c = await (await api(`/api/v1/cases/${good.id}`, a.token)).json()
  assert.equal(c.next, 'verwijderd', JSON.stringify(c))
  assert.equal(c.finished, false)
  // The officer's step, from the phone's connection.
  const r = await api(`/api/v1/cases/${good.id}/steps`, a.token, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ step: 'verwijderd' }),
  })
  assert.equal(r.status, 200, await r.clone().text())
  assert.equal((await r.json()).next, 'kosten_gevorderd')
})

test('with default settings WatermelonDB gets created and updated where they are true', async () => {
  const a = await device('handhaver')
  const b = await device('handhaver')
  const complaints = await syncComplaints(async () => {
    await a.sync(); await b.sync()
    const mine = await a.create({})
    await a.sync()                              // b has never seen it: `created` for b
    await b.sync()
    await b.edit(mine.id, { description: 'door B aangevuld' })
    await b.sync()                              // a has it: `updated` for a
    await a.sync()
    assert.equal((await a.find(mine.id)).description, 'door B aangevuld')
  })
  assert.deepEqual(complaints, [])
})

test('an offline edit of a report another phone deleted reaches the lead', async () => {
  const a = await device('handhaver')
  const lead = await device('teamleider')
  const v = await a.create({})
  await a.sync(); await lead.sync()
  await lead.edit(v.id, { description: 'offline aangevuld' })
  await a.db.write(async () => (await a.db.get('violations').find(v.id)).markAsDeleted())
  await a.sync()
  await lead.sync()                             // the pull deletes it: the adapter pushes the edit first
  assert.equal(await lead.find(v.id), null, 'the deletion stands')
  const conflicts = await (await api('/api/v1/conflicts?status=open', lead.token)).json()
  const c = conflicts.find((c) => c.record_id === v.id && c.kind === 'edit_on_deleted')
  assert.ok(c, `the lead sees the lost edit: ${JSON.stringify(conflicts)}`)
  assert.equal(c.client_value.description, 'offline aangevuld')
})

test('a paged migration sync ends and brings everything', async () => {
  const a = await device('handhaver', { pageSize: 2 })
  for (let i = 0; i < 5; i++) await a.create({})
  await a.sync()
  const cursor = Number(await a.db.adapter.getLocal('__watermelon_last_pulled_at'))
  const pull = makePull({ database: a.db, api: a.api, pageSize: 2 })
  const res = await within(20000, pull({
    lastPulledAt: cursor, schemaVersion: 1, migration: { from: 1, tables: ['violations'], columns: [] },
  }), 'a migration pull')
  const rows = res.changes.violations.created.length + res.changes.violations.updated.length
  assert.ok(rows >= 5, `everything live came (${rows})`)
  assert.ok(res.timestamp >= cursor)
})

test('a turbo first pull has the shape the turbo loader reads, and holds what a paged pull holds', async () => {
  // WatermelonDB's turbo loader runs only in the JSI SQLite adapter (React Native), not under
  // Node: this checks the body against what that loader (native/shared/Database-turboSync.cpp)
  // accepts, then applies it through the ordinary path.
  const a = await device('handhaver')
  await a.create({}); await a.sync()
  const r = await a.api('/api/v1/sync/pull?last_pulled_at=0&turbo=true')
  assert.equal(r.status, 200)
  const syncJson = await r.text()
  const body = JSON.parse(syncJson)
  assert.equal(body.has_more, false)
  assert.ok(body.timestamp > 0)
  for (const [table, c] of Object.entries(body.changes)) {
    assert.deepEqual(Object.keys(c).sort(), ['created', 'deleted', 'updated'], table)
    assert.deepEqual(c.deleted, [], `turbo: deleted must be empty (${table})`)
  }
  const fresh = await device('handhaver', { pageSize: 1000 })
  await fresh.sync()
  const paged = (await fresh.db.get('violations').query().fetch()).map((x) => x.id).sort()
  const turbo = body.changes.violations.created.map((x) => x.id).sort()
  assert.deepEqual(turbo, paged)
})

test('after a purge a paged first pull ends, and an old cursor resyncs in full', async () => {
  const bin = process.env.THOR_BIN, dir = process.env.THOR_DATA_DIR
  if (!bin || !dir) {
    if (process.env.CI === 'true') throw new Error('THOR_BIN and THOR_DATA_DIR must name the server binary and its data folder')
    console.error('\n*** SKIPPED: THOR_BIN/THOR_DATA_DIR not set, cannot purge the server ***\n')
    return
  }
  const a = await device('handhaver', { pageSize: 2 })
  const kept = []
  for (let i = 0; i < 4; i++) kept.push((await a.create({})).id)
  const gone = await a.create({})
  await a.sync()
  await a.db.write(async () => (await a.db.get('violations').find(gone.id)).markAsDeleted())
  await a.sync()
  const { execFileSync } = require('node:child_process')
  execFileSync(bin, ['purge', '--data-dir', dir], {
    env: { ...process.env, THOR_TOMBSTONE_DAYS: '0', THOR_SYNC_WINDOW_DAYS: '0' }, stdio: 'inherit',
  })
  const b = await device('handhaver', { pageSize: 2 })
  await within(30000, b.sync(), 'a paged first pull after a purge')
  for (const id of kept) assert.ok(await b.find(id), 'a live report arrived')
  assert.equal(await b.find(gone.id), null)
  const extra = await a.create({ description: 'na de purge' })
  await within(30000, a.sync(), 'a resync after 410')
  assert.equal((await a.find(extra.id))._status, 'synced')
})
