/**
 * The SQLite driver: the conformance suite on a real database file in a temp dir, then what only this
 * driver has (WAL mode, another writer's lock, files it cannot open, records it did not write).
 */
import t from 'tap'
import Database from 'better-sqlite3'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ErrorCode} from '../../src/errors.js'
import {padLedgerId} from '../../src/meta/codec.js'
import {openMetadataStore} from '../../src/meta/open.js'
import {conformance} from './conformance.js'
import {newLedger, opened} from './harness.js'

const dir = mkdtempSync(join(tmpdir(), 'logctl-meta-sqlite-'))
t.teardown(() => rmSync(dir, {recursive: true, force: true}))
const url = `sqlite:${join(dir, 'meta.db')}`

conformance(t, 'sqlite', () => openMetadataStore(url), {
  unreachableUrl: `sqlite:${join(dir, 'no-such-dir', 'meta.db')}`,
  bookieTtlMs: 300,
  expiryBoundMs: 3000,
})

t.test('sqlite: the file is in WAL mode so that readers and one writer share it across processes', async t => {
  const store = await opened(t, () => openMetadataStore(url))
  await store.createLedger(newLedger())
  const raw = new Database(join(dir, 'meta.db'), {readonly: true})
  t.teardown(() => raw.close())
  t.equal(raw.pragma('journal_mode', {simple: true}), 'wal')
  t.equal(raw.pragma('user_version', {simple: true}), 1, 'schema version stamped')
})

t.test('sqlite: a writer waits up to timeoutMs for another writer, then METADATA_UNAVAILABLE', async t => {
  const path = join(dir, 'locked.db')
  const store = await opened(t, () => openMetadataStore(`sqlite:${path}`, {timeoutMs: 200}))
  const key = 'held'
  const v = await store.put(key, Buffer.from('before'), null)
  // Another connection takes the write lock and keeps it (as a process stuck mid-transaction would).
  const holder = new Database(path, {timeout: 0})
  t.teardown(() => holder.close())
  holder.exec('BEGIN IMMEDIATE')
  const start = Date.now()
  const err = await store.put(key, Buffer.from('during'), v).then(() => undefined, (e: unknown) => e)
  t.match(err, {code: ErrorCode.METADATA_UNAVAILABLE, retriable: true, message: /write lock/}, 'busy -> METADATA_UNAVAILABLE')
  t.ok(Date.now() - start >= 150, 'after waiting for the lock')
  t.same((await store.get(key))?.value, Buffer.from('before'), 'readers are not blocked by the writer (WAL)')
  holder.exec('COMMIT')
  t.ok(await store.put(key, Buffer.from('after'), v) > v, 'writes go through once the lock is free')
})

t.test('sqlite: files that cannot be opened are METADATA_UNAVAILABLE with the reason', async t => {
  const unavailable = {code: ErrorCode.METADATA_UNAVAILABLE}
  const asDir = join(dir, 'a-directory')
  mkdirSync(asDir)
  await t.rejects(openMetadataStore(`sqlite:${asDir}`), unavailable, 'a directory')
  const notDb = join(dir, 'not-a-db')
  writeFileSync(notDb, 'this is not a SQLite database, it is long enough to have a header page '.repeat(20))
  const err = await openMetadataStore(`sqlite:${notDb}`).then(() => undefined, (e: unknown) => e)
  t.match(err, {...unavailable, message: /not-a-db.*not a database/}, 'a file that is not a database')
  await t.rejects(openMetadataStore(`sqlite:${join(dir, 'missing', 'meta.db')}`), {...unavailable, message: /directory does not exist/}, 'a missing directory')
})

t.test('sqlite: a newer schema or record format is refused, a corrupt record is CORRUPT', async t => {
  const path = join(dir, 'formats.db')
  const store = await opened(t, () => openMetadataStore(`sqlite:${path}`))
  const good = await store.createLedger(newLedger())
  const bad = await store.createLedger(newLedger())
  const newer = await store.createLedger(newLedger())
  const raw = new Database(path)
  t.teardown(() => raw.close())
  const set = raw.prepare('UPDATE ledgers SET body = ? WHERE id = ?')
  set.run('{"format":1, "ledgerId": "oops"', padLedgerId(bad.value.ledgerId))
  set.run(JSON.stringify({format: 2}), padLedgerId(newer.value.ledgerId))
  t.same(await store.getLedger(good.value.ledgerId), good, 'the other records still read')
  await t.rejects(store.getLedger(bad.value.ledgerId), {code: ErrorCode.CORRUPT}, 'truncated JSON')
  await t.rejects(store.getLedger(newer.value.ledgerId), {code: ErrorCode.BAD_FORMAT_VERSION}, 'a record format from a newer logctl')
  set.run(JSON.stringify({format: 1, ledgerId: String(bad.value.ledgerId), ensembleSize: 0}), padLedgerId(bad.value.ledgerId))
  await t.rejects(store.getLedger(bad.value.ledgerId), {code: ErrorCode.CORRUPT, message: /malformed/}, 'a record that breaks an invariant')
  const {body} = raw.prepare('SELECT body FROM ledgers WHERE id = ?').get(padLedgerId(good.value.ledgerId)) as {body: string}
  set.run(JSON.stringify({...JSON.parse(body) as object, ledgerId: '999'}), padLedgerId(bad.value.ledgerId))
  await t.rejects(store.getLedger(bad.value.ledgerId), {code: ErrorCode.CORRUPT, message: /holds ledger 999/}, 'a record under the wrong id')
  raw.prepare("INSERT INTO bookies (id, session, expires_at, last_seen, body) VALUES ('junk', 's', 0, 0, '[]')").run()
  await t.rejects(store.listBookies(), {code: ErrorCode.CORRUPT}, 'a bookie record that is not an object')
  raw.prepare("UPDATE bookies SET body = ? WHERE id = 'junk'").run(JSON.stringify({format: 1, id: 'junk', address: 'a:1', state: 'writable', freeBytes: 0, totalBytes: 0, ledgers: 0}))
  await t.rejects(store.listBookies(), {code: ErrorCode.CORRUPT, message: /lacks lastSeen or session/}, 'a bookie record without its session')

  raw.pragma('user_version = 99')
  await t.rejects(openMetadataStore(`sqlite:${path}`), {code: ErrorCode.BAD_FORMAT_VERSION, message: /schema version 99/}, 'a schema from a newer logctl')
})
