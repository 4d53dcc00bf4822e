// Conformance: the real WatermelonDB sync engine (0.28.0, LokiJS adapter in memory) against a
// running thor server (THOR_URL, demo accounts). Run by .ci/run: `npm ci && npm test`.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
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
        { name: 'outcome', type: 'string' }, opt('plate', 'string'), opt('driver_present', 'boolean'),
        { name: 'officer_ids', type: 'string' }, { name: 'status', type: 'string' }, opt('review_note', 'string'),
        opt('reviewed_by', 'string'), opt('reviewed_at', 'number'), opt('wijk_code', 'string'), opt('buurt_code', 'string'),
        opt('team_id', 'string'), opt('created_by', 'string'), opt('flags', 'string'), opt('server_rev', 'number'), opt('base_rev', 'number'),
      ],
    }),
    tableSchema({ name: 'categories', columns: [{ name: 'name', type: 'string' }] }),
  ],
})
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

function mergePages(into, changes) {
  if (!into) return changes
  for (const [table, c] of Object.entries(changes)) {
    const t = into[table] || (into[table] = { created: [], updated: [], deleted: [] })
    const byId = new Map(t.updated.map((r) => [r.id, r]))
    for (const r of c.updated) byId.set(r.id, r)
    const deleted = new Set([...t.deleted, ...c.deleted])
    t.updated = [...byId.values()].filter((r) => !deleted.has(r.id))
    t.deleted = [...deleted]
  }
  return into
}

/** A phone: its own database and the adapter a THOR app would write. */
async function device(username) {
  const deviceId = `conformance-${crypto.randomUUID()}`
  const token = await login(username, deviceId)
  const db = new Database({
    adapter: new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false, extraLokiOptions: { autosave: false } }),
    modelClasses: [Violation, Category],
  })
  const hooks = { afterPush: null }
  async function pullChanges({ lastPulledAt, schemaVersion }) {
    let cursor = lastPulledAt || 0
    let merged = null
    let strategy
    for (;;) {
      const r = await api(`/api/v1/sync/pull?last_pulled_at=${cursor}&schema_version=${schemaVersion}&limit=3`, token)
      if (r.status === 410) { cursor = 0; merged = null; strategy = 'replacement'; continue }
      assert.equal(r.status, 200)
      const page = await r.json()
      merged = mergePages(merged, page.changes)
      cursor = page.timestamp
      if (!page.has_more) return { changes: merged, timestamp: cursor, experimentalStrategy: strategy }
    }
  }
  async function pushChanges({ changes, lastPulledAt }) {
    const body = JSON.stringify({ changes })
    const key = crypto.createHash('sha256').update(deviceId + lastPulledAt + body).digest('hex')
    const r = await api(`/api/v1/sync/push?last_pulled_at=${lastPulledAt}`, token, {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-device-time': String(Date.now()), 'x-app-version': 'conformance' },
    })
    if (!r.ok) throw new Error(`push ${r.status}: ${await r.text()}`)
    const answer = await r.json()
    if (hooks.afterPush) { const h = hooks.afterPush; hooks.afterPush = null; h(answer) }
    return { experimentalRejectedIds: answer.experimentalRejectedIds }
  }
  const sync = () => synchronize({
    database: db, pullChanges, pushChanges, sendCreatedAsUpdated: true,
    conflictResolver: (table, local, remote, resolved) => {
      resolved.base_rev = local.base_rev
      return resolved
    },
  })
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
      if (r._raw._status === 'synced') r._raw.base_rev = r._raw.server_rev ?? null
      for (const [k, val] of Object.entries(fields)) r._setRaw(k, val)
    })
  })
  const find = async (id) => { try { return (await db.get('violations').find(id))._raw } catch { return null } }
  return { db, token, sync, create, edit, find, hooks }
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
