// THOR sync for a WatermelonDB app: synchronize() with WatermelonDB's default settings.
// This file is the adapter of mobile-api-spec/SYNC.md (a test keeps the two equal) and the one
// tests/conformance runs against the server. `api(path, init)` is the app's fetch with its
// Authorization header; `sha256(text)` gives a hex digest.
const { synchronize } = require('@nozbe/watermelondb/sync')
const { Q } = require('@nozbe/watermelondb')

// Pages of one pull never repeat a record; a deletion still wins over an earlier row.
function mergePages(into, changes) {
  if (!into) return changes
  for (const [table, c] of Object.entries(changes)) {
    const t = into[table] || (into[table] = { created: [], updated: [], deleted: [] })
    const gone = new Set(c.deleted)
    t.created = t.created.filter((r) => !gone.has(r.id)).concat(c.created)
    t.updated = t.updated.filter((r) => !gone.has(r.id)).concat(c.updated)
    t.deleted = t.deleted.concat(c.deleted)
  }
  return into
}

// A replacement pull (after 410) is a first pull for the server, so every row is `created`; the
// phone still has some of them: those go to `updated`, as WatermelonDB expects.
async function keepLocalAsUpdated(database, changes) {
  for (const [table, c] of Object.entries(changes)) {
    if (!c.created.length || !database.collections.get(table)) continue
    const local = new Set(await database.get(table)
      .query(Q.where('id', Q.oneOf(c.created.map((r) => r.id)))).fetchIds())
    c.updated = c.updated.concat(c.created.filter((r) => local.has(r.id)))
    c.created = c.created.filter((r) => !local.has(r.id))
  }
}

// Before WatermelonDB applies a pull's deletions, push the pending local changes of the records
// it would delete: the server keeps the deletion and records the edit as an `edit_on_deleted`
// conflict for the team lead, so no offline edit disappears unseen.
async function pushEditsOfDeleted({ database, api, changes, lastPulledAt }) {
  const push = {}
  for (const [table, c] of Object.entries(changes)) {
    if (!c.deleted.length || !database.collections.get(table)) continue
    const pending = await database.get(table)
      .query(Q.where('id', Q.oneOf(c.deleted)), Q.where('_status', Q.notEq('synced'))).fetch()
    if (pending.length) push[table] = { created: [], updated: pending.map((r) => r._raw), deleted: [] }
  }
  if (!Object.keys(push).length) return
  const r = await api(`/api/v1/sync/push?last_pulled_at=${lastPulledAt || 0}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ changes: push }),
  })
  if (!r.ok) throw new Error(`push before delete ${r.status}`) // WatermelonDB keeps everything and retries
}

// The pull: every page of one snapshot, continued with its page token.
function makePull({ database, api, pageSize, turbo, firstSync }) {
  const limit = pageSize ? `&limit=${pageSize}` : ''
  return async ({ lastPulledAt, schemaVersion, migration }) => {
    if (turbo && firstSync) {
      const r = await api(`/api/v1/sync/pull?last_pulled_at=0&turbo=true&schema_version=${schemaVersion}`)
      if (!r.ok) throw new Error(`pull ${r.status}`)
      return { syncJson: await r.text() }
    }
    let cursor = lastPulledAt || 0, merged = null, strategy, page = null
    for (;;) {                                      // page until has_more is false
      const q = page ? `page_token=${page}`         // the token carries the rest of the pull
        : `last_pulled_at=${cursor}&schema_version=${schemaVersion}` +
          `&migration=${encodeURIComponent(JSON.stringify(migration))}`
      const r = await api(`/api/v1/sync/pull?${q}${limit}`)
      if (r.status === 410) {                       // cursor expired: pull everything, replace
        cursor = 0; page = null; merged = null; strategy = 'replacement'; continue
      }
      if (!r.ok) throw new Error(`pull ${r.status}`)
      const body = await r.json()
      merged = mergePages(merged, body.changes)
      if (!body.has_more) {
        if (strategy === 'replacement') await keepLocalAsUpdated(database, merged)
        await pushEditsOfDeleted({ database, api, changes: merged, lastPulledAt })
        return { changes: merged, timestamp: body.timestamp, experimentalStrategy: strategy }
      }
      page = body.next_page
    }
  }
}

async function thorSync({ database, api, sha256, deviceId, appVersion, pageSize, turbo = false, onPush }) {
  const firstSync = !(await database.adapter.getLocal('__watermelon_last_pulled_at'))
  await synchronize({
    database,
    migrationsEnabledAtVersion: 1,
    // Turbo login (JSI SQLite adapter only): the first pull as one streamed page.
    unsafeTurbo: turbo && firstSync,
    pullChanges: makePull({ database, api, pageSize, turbo, firstSync }),
    pushChanges: async ({ changes, lastPulledAt }) => {
      const body = JSON.stringify({ changes })
      const r = await api(`/api/v1/sync/push?last_pulled_at=${lastPulledAt}`, {
        method: 'POST', body,
        headers: { 'content-type': 'application/json',
                   'idempotency-key': await sha256(deviceId + lastPulledAt + body), // same push, same key
                   'x-device-time': String(Date.now()), 'x-app-version': appVersion, 'x-schema-version': '1' } })
      if (!r.ok) throw new Error(`push ${r.status}`)  // WatermelonDB keeps the changes and retries
      const answer = await r.json()
      if (onPush) onPush(answer)
      return { experimentalRejectedIds: answer.experimentalRejectedIds }
    },
    // Keep the base of a record edited offline, so the server can merge per field.
    conflictResolver: (table, local, remote, resolved) => {
      resolved.base_rev = local.base_rev
      return resolved
    },
  })
}

// Wherever the app changes a record: pin the revision the change starts from.
function pinBase(raw) {
  if (raw._status === 'synced') raw.base_rev = raw.server_rev ?? null
}

module.exports = { thorSync, makePull, pinBase, mergePages }
