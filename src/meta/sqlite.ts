/**
 * The embedded metadata store: one SQLite file, safe for several processes on one machine.
 *
 * - WAL mode: readers never wait for the writer; writers queue on SQLite's file lock, and busy_timeout makes a
 *   writer wait (up to OpenOptions.timeoutMs) instead of failing at once while another process writes.
 * - Every write runs in BEGIN IMMEDIATE: it takes the write lock before it reads, so its check (version,
 *   existence, id counter) and its write see the same state, whatever other processes do. CAS is then a plain
 *   `UPDATE ... WHERE version = ?` whose change count says who won.
 * - synchronous=FULL: a committed CAS survives power loss, as it would in etcd. A registration's own liveness
 *   writes (refresh, published state, deregistration) commit with synchronous=NORMAL instead (in WAL mode:
 *   no fsync at commit; the next FULL commit or checkpoint makes them durable): they need no durability (a
 *   bookie that crashed registers again when it restarts), and each FULL commit was an fsync on the bookie's
 *   event loop every few seconds, waiting behind the journal's syncs on a busy disk.
 * - better-sqlite3 is synchronous; the calls are short (one indexed row), so the event loop stalls only while
 *   another process holds the write lock, at most timeoutMs.
 * Schema and key layout: docs/METADATA.md.
 */
import Database from 'better-sqlite3'
import {randomUUID} from 'node:crypto'
import {ErrorCode, LogError, isLogError} from '../errors.js'
import {MAX_LEDGER_ID} from '../ids.js'
import {decodeBookie, decodeLedger, encodeBookie, encodeLedger, padLedgerId, prefixEnd} from './codec.js'
import {Registration, type LivenessBackend} from './registration.js'
import {
  DEFAULT_BOOKIE_TTL_MS, type BookieInfo, type BookieRegistration, type BookieStatus, type CreateLedgerOptions, type KvEntry,
  type LedgerMetadata, type ListLedgersOptions, type MetadataStore, type NewLedger, type RegisterOptions, type Versioned,
} from './store.js'
import {
  badVersion, checkBookieInfo, checkKey, checkLedger, checkLedgerId, checkListOptions, checkNewLedger, checkPrefix, checkTtl, checkValue, checkVersion,
  closedStore, noSuchLedger,
} from './validate.js'

export const SCHEMA_VERSION = 1
export const DEFAULT_BUSY_TIMEOUT_MS = 5000

/** `store` is a single row: the store-wide revision that versions come from, and the next ledger id to hand out. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS store (one INTEGER PRIMARY KEY CHECK (one = 1), revision INTEGER NOT NULL, next_ledger_id TEXT NOT NULL);
INSERT OR IGNORE INTO store (one, revision, next_ledger_id) VALUES (1, 0, '1');
CREATE TABLE IF NOT EXISTS ledgers (id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, version INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bookies (id TEXT PRIMARY KEY, session TEXT NOT NULL, expires_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
`

type Db = Database.Database

export function openSqliteStore(url: string, path: string, timeoutMs = DEFAULT_BUSY_TIMEOUT_MS): SqliteStore {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    let db: Db | undefined
    try {
      db = new Database(path, {timeout: timeoutMs})
      // Every INTEGER comes back as a bigint: versions are 64-bit and must not round through a double.
      db.defaultSafeIntegers(true)
      const mode = db.pragma('journal_mode = WAL', {simple: true})
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal (the file system may not support WAL's shared memory)`)
      db.pragma('synchronous = FULL')
      migrate(db)
      return new SqliteStore(url, path, db, timeoutMs)
    } catch (err) {
      db?.close()
      if (isLogError(err)) throw err
      // Switching a new file to WAL needs it to itself: several processes opening one new file at once (a
      // cluster starting) can get SQLITE_BUSY there without SQLite's busy handler ever waiting. Try again.
      if ((err as {code?: string}).code === 'SQLITE_BUSY' && Date.now() < deadline) {
        sleepSync(Math.min(5 * 2 ** Math.min(attempt, 5), 100))
        continue
      }
      throw new LogError(ErrorCode.METADATA_UNAVAILABLE, `cannot open the SQLite metadata store ${path}: ${(err as Error).message}`, {cause: err, detail: {path}})
    }
  }
}

/** Opening is synchronous (better-sqlite3), so the wait between attempts is too. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Several processes may open a new file at once: IMMEDIATE makes one of them create the schema, the others wait. */
function migrate(db: Db): void {
  db.transaction(() => {
    const version = Number(db.pragma('user_version', {simple: true}))
    if (version > SCHEMA_VERSION) {
      throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `metadata schema version ${version} is newer than this logctl's ${SCHEMA_VERSION} (upgrade logctl)`)
    }
    db.exec(SCHEMA)
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}

interface VersionRow { version: bigint; body: string }
interface KvRow { key: Buffer; value: Buffer; version: bigint }
interface BookieRow { id: string; expires_at: bigint; last_seen: bigint; body: string }

export class SqliteStore implements MetadataStore {
  #db: Db | undefined
  readonly #registrations = new Set<Registration>()
  #closing: Promise<void> | undefined
  readonly #sql: Statements
  /** BEGIN IMMEDIATE ... COMMIT around a callback; ROLLBACK if it throws (a lost CAS undoes its revision bump). */
  readonly #transaction: Database.Transaction<(fn: () => unknown) => unknown>

  constructor(readonly url: string, private readonly path: string, db: Db, private readonly timeoutMs: number) {
    this.#db = db
    this.#sql = prepare(db)
    this.#transaction = db.transaction((fn: () => unknown) => fn())
  }

  createLedger(meta: NewLedger, opts?: CreateLedgerOptions): Promise<Versioned<LedgerMetadata>> {
    return this.#write('create ledger', sql => {
      const checked = checkNewLedger(meta)
      const wanted = opts?.ledgerId === undefined ? undefined : checkLedgerId(opts.ledgerId)
      const next = BigInt((sql.nextId.get() as {next_ledger_id: string}).next_ledger_id)
      const id = wanted ?? next
      if (id > MAX_LEDGER_ID) throw new LogError(ErrorCode.INTERNAL, 'the ledger id space is exhausted')
      if (sql.ledgerVersion.get(padLedgerId(id)) !== undefined) {
        throw new LogError(ErrorCode.LEDGER_EXISTS, `ledger ${id} already exists`, {detail: {ledgerId: id.toString()}})
      }
      const value: LedgerMetadata = {ledgerId: id, ...checked}
      const version = bump(sql)
      sql.insertLedger.run(padLedgerId(id), version, encodeLedger(value))
      // Never hand out an id at or below one that was ever used, even if that ledger is deleted later.
      if (id >= next) sql.setNextId.run((id + 1n).toString())
      return {value, version}
    })
  }

  getLedger(id: bigint): Promise<Versioned<LedgerMetadata>> {
    return this.#read('get ledger', sql => {
      const key = padLedgerId(checkLedgerId(id))
      const row = sql.getLedger.get(key) as VersionRow | undefined
      if (row === undefined) throw noSuchLedger(id)
      return {value: decodeLedger(row.body, `ledgers[${key}]`, id), version: row.version}
    })
  }

  updateLedger(meta: LedgerMetadata, expectedVersion: bigint): Promise<Versioned<LedgerMetadata>> {
    return this.#write('update ledger', sql => {
      const value = checkLedger(meta)
      const expected = checkVersion(expectedVersion)
      const key = padLedgerId(value.ledgerId)
      const version = bump(sql)
      if (sql.casLedger.run(version, encodeLedger(value), key, expected).changes === 0) {
        // Thrown inside the transaction: the revision bump above rolls back with it.
        throw sql.ledgerVersion.get(key) === undefined ? noSuchLedger(value.ledgerId) : badVersion(`ledger ${value.ledgerId}`, expected)
      }
      return {value, version}
    })
  }

  deleteLedger(id: bigint, expectedVersion?: bigint): Promise<void> {
    return this.#write('delete ledger', sql => {
      const key = padLedgerId(checkLedgerId(id))
      const expected = expectedVersion === undefined ? undefined : checkVersion(expectedVersion)
      const deleted = expected === undefined ? sql.deleteLedger.run(key) : sql.casDeleteLedger.run(key, expected)
      if (deleted.changes === 0) throw sql.ledgerVersion.get(key) === undefined ? noSuchLedger(id) : badVersion(`ledger ${id}`, expected)
      bump(sql)
    })
  }

  listLedgers(opts?: ListLedgersOptions): Promise<bigint[]> {
    return this.#read('list ledgers', sql => {
      const {after, limit} = checkListOptions(opts)
      const from = after < 0n ? '' : padLedgerId(after)
      // LIMIT -1 is SQLite for "no limit".
      return (sql.listLedgers.all(from, limit ?? -1) as Array<{id: string}>).map(r => BigInt(r.id))
    })
  }

  registerBookie(info: BookieInfo, opts?: RegisterOptions): Promise<BookieRegistration> {
    return this.#write('register bookie', sql => {
      const checked = checkBookieInfo(info)
      const ttl = checkTtl(opts?.ttlMs ?? DEFAULT_BOOKIE_TTL_MS)
      const session = randomUUID()
      const now = Date.now()
      // A second registration of the same id takes it over; the first one finds out on its next refresh.
      sql.upsertBookie.run(checked.id, session, now + ttl, now, encodeBookie({...checked, lastSeen: now, session}))
      const reg = new Registration(checked.id, this.#liveness(checked.id, session, ttl), Math.floor(ttl / 3), r => this.#registrations.delete(r))
      this.#registrations.add(reg)
      return reg
    })
  }

  #liveness(id: string, session: string, ttl: number): LivenessBackend {
    const owned = (changes: number): void => {
      if (changes === 0) throw new LogError(ErrorCode.BAD_VERSION, `bookie ${id} was registered again by another process`, {detail: {bookieId: id}})
    }
    return {
      refresh: () => this.#livenessWrite('refresh bookie', sql => {
        const now = Date.now()
        owned(sql.refreshBookie.run(now + ttl, now, id, session).changes)
      }),
      publish: info => this.#livenessWrite('update bookie', sql => {
        const now = Date.now()
        owned(sql.publishBookie.run(now + ttl, now, encodeBookie({...info, lastSeen: now, session}), id, session).changes)
      }),
      // expires_at 0: down from now on, while the row stays so that listBookies still shows the bookie.
      release: () => this.#livenessWrite('deregister bookie', sql => { sql.refreshBookie.run(0, Date.now(), id, session) }),
    }
  }

  listBookies(): Promise<BookieStatus[]> {
    return this.#read('list bookies', sql => {
      const now = Date.now()
      return (sql.listBookies.all() as BookieRow[]).map(row => {
        const {session: _session, lastSeen: _lastSeen, ...info} = decodeBookie(row.body, `bookies[${row.id}]`)
        const alive = Number(row.expires_at) > now
        return {...info, alive, lastSeen: alive ? now : Number(row.last_seen)}
      })
    })
  }

  get(key: string): Promise<Versioned<Buffer> | undefined> {
    return this.#read('get', sql => {
      const row = sql.getKv.get(Buffer.from(checkKey(key))) as KvRow | undefined
      return row === undefined ? undefined : {value: row.value, version: row.version}
    })
  }

  put(key: string, value: Buffer, expectedVersion: bigint | null): Promise<bigint> {
    return this.#write('put', sql => {
      const k = Buffer.from(checkKey(key))
      const v = checkValue(value)
      const expected = expectedVersion === null ? null : checkVersion(expectedVersion)
      const version = bump(sql)
      const changes = expected === null ? sql.insertKv.run(k, version, v).changes : sql.casKv.run(version, v, k, expected).changes
      if (changes === 0) throw badVersion(`key ${JSON.stringify(key)}`, expected)
      return version
    })
  }

  delete(key: string, expectedVersion?: bigint): Promise<void> {
    return this.#write('delete', sql => {
      const k = Buffer.from(checkKey(key))
      if (expectedVersion === undefined) {
        if (sql.deleteKv.run(k).changes > 0) bump(sql)
        return
      }
      const expected = checkVersion(expectedVersion)
      if (sql.casDeleteKv.run(k, expected).changes === 0) throw badVersion(`key ${JSON.stringify(key)}`, expected)
      bump(sql)
    })
  }

  list(prefix: string): Promise<KvEntry[]> {
    return this.#read('list', sql => {
      const from = Buffer.from(checkPrefix(prefix))
      const end = prefixEnd(from)
      const rows = (end === undefined ? sql.listKvFrom.all(from) : sql.listKvRange.all(from, end)) as KvRow[]
      return rows.map(r => ({key: r.key.toString('utf8'), value: r.value, version: r.version}))
    })
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Deregister first, while the database is still open: a clean shutdown lists its bookies as down at once.
      await Promise.allSettled([...this.#registrations].map(r => r.close()))
      this.#db?.close()
      this.#db = undefined
    })()
    return this.#closing
  }

  #read<T>(what: string, fn: (sql: Statements) => T): Promise<T> {
    return this.#run(what, fn, false)
  }

  #write<T>(what: string, fn: (sql: Statements) => T): Promise<T> {
    return this.#run(what, sql => this.#transaction.immediate(() => fn(sql)) as T, false)
  }

  /**
   * A registration's own liveness write: made even while close() shuts callers out (deregistration), and
   * committed without an fsync (synchronous=NORMAL for this transaction only; see the top of the file).
   */
  #livenessWrite(what: string, fn: (sql: Statements) => void): Promise<void> {
    return this.#run(what, sql => {
      const db = this.#db!
      db.pragma('synchronous = NORMAL')
      try {
        this.#transaction.immediate(() => fn(sql))
      } finally {
        db.pragma('synchronous = FULL')
      }
    }, true)
  }

  /** Async in shape only (better-sqlite3 is synchronous), so callers see the same promise API as etcd's. */
  async #run<T>(what: string, fn: (sql: Statements) => T, internal: boolean): Promise<T> {
    if (this.#db === undefined || (this.#closing !== undefined && !internal)) {
      throw closedStore(this.url)
    }
    try {
      return fn(this.#sql)
    } catch (err) {
      if (isLogError(err)) throw err
      const code = (err as {code?: unknown}).code
      if (typeof code === 'string' && code.startsWith('SQLITE_')) {
        const why = code.startsWith('SQLITE_BUSY')
          ? `another process held the write lock for more than ${this.timeoutMs} ms`
          : (err as Error).message
        throw new LogError(ErrorCode.METADATA_UNAVAILABLE, `${what} on ${this.path}: ${why} (${code})`, {cause: err, detail: {path: this.path, sqlite: code}})
      }
      throw new LogError(ErrorCode.INTERNAL, `${what} on ${this.path}: ${(err as Error).message}`, {cause: err})
    }
  }
}

type Statements = ReturnType<typeof prepare>

function prepare(db: Db) {
  const s = (sql: string): Database.Statement => db.prepare(sql)
  return {
    bump: s('UPDATE store SET revision = revision + 1 WHERE one = 1 RETURNING revision'),
    nextId: s('SELECT next_ledger_id FROM store WHERE one = 1'),
    setNextId: s('UPDATE store SET next_ledger_id = ? WHERE one = 1'),
    ledgerVersion: s('SELECT version FROM ledgers WHERE id = ?'),
    getLedger: s('SELECT version, body FROM ledgers WHERE id = ?'),
    insertLedger: s('INSERT INTO ledgers (id, version, body) VALUES (?, ?, ?)'),
    casLedger: s('UPDATE ledgers SET version = ?, body = ? WHERE id = ? AND version = ?'),
    deleteLedger: s('DELETE FROM ledgers WHERE id = ?'),
    casDeleteLedger: s('DELETE FROM ledgers WHERE id = ? AND version = ?'),
    listLedgers: s('SELECT id FROM ledgers WHERE id > ? ORDER BY id LIMIT ?'),
    getKv: s('SELECT value, version FROM kv WHERE key = ?'),
    insertKv: s('INSERT INTO kv (key, version, value) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING'),
    casKv: s('UPDATE kv SET version = ?, value = ? WHERE key = ? AND version = ?'),
    deleteKv: s('DELETE FROM kv WHERE key = ?'),
    casDeleteKv: s('DELETE FROM kv WHERE key = ? AND version = ?'),
    listKvFrom: s('SELECT key, value, version FROM kv WHERE key >= ? ORDER BY key'),
    listKvRange: s('SELECT key, value, version FROM kv WHERE key >= ? AND key < ? ORDER BY key'),
    upsertBookie: s(`INSERT INTO bookies (id, session, expires_at, last_seen, body) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET session = excluded.session, expires_at = excluded.expires_at,
      last_seen = excluded.last_seen, body = excluded.body`),
    refreshBookie: s('UPDATE bookies SET expires_at = ?, last_seen = ? WHERE id = ? AND session = ?'),
    publishBookie: s('UPDATE bookies SET expires_at = ?, last_seen = ?, body = ? WHERE id = ? AND session = ?'),
    listBookies: s('SELECT id, expires_at, last_seen, body FROM bookies ORDER BY id'),
  }
}

function bump(sql: Statements): bigint {
  return (sql.bump.get() as {revision: bigint}).revision
}
