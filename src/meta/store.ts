/**
 * The metadata store contract: ledger metadata under compare-and-swap, bookie registrations with liveness, and
 * a small versioned key-value space for logs and cursors. Two drivers implement it (sqlite.ts for one machine,
 * etcd.ts for clusters) and test/meta/conformance.ts holds both to the same behaviour. open.ts picks the
 * driver from a URL; it lives apart from this file so that the drivers can import these types without an
 * import cycle.
 *
 * Versions: every successful write gives the record a new version taken from a store-wide revision counter
 * that only grows (etcd's mod revision; a counter row in SQLite). A version is never reused, not even after a
 * delete and re-create, so a stale holder can never win a CAS against a newer record of the same key.
 */

export type LedgerState = 'OPEN' | 'IN_RECOVERY' | 'CLOSED'
export const LEDGER_STATES: readonly LedgerState[] = ['OPEN', 'IN_RECOVERY', 'CLOSED']

/** One fragment of a ledger: bookie ids by ensemble index, in force from `firstEntryId` on. */
export interface Ensemble { firstEntryId: bigint; bookies: string[] }

export type Compression = 'none' | 'lz4'
export const COMPRESSIONS: readonly Compression[] = ['none', 'lz4']

export interface LedgerMetadata {
  ledgerId: bigint
  /** E >= Qw >= Qa >= 1, else BAD_INPUT. */
  ensembleSize: number
  writeQuorum: number
  ackQuorum: number
  state: LedgerState
  /** -1n until CLOSED (the store refuses anything else). */
  lastEntryId: bigint
  /** Total payload bytes, set at close. */
  length: bigint
  /** Sorted by firstEntryId, strictly increasing, the first at 0n; each lists exactly ensembleSize distinct bookies. */
  ensembles: Ensemble[]
  compression: Compression
  customMetadata: Record<string, string>
  /** ms since the epoch */
  createdAt: number
}

export type NewLedger = Omit<LedgerMetadata, 'ledgerId'>

export interface CreateLedgerOptions {
  /** Ask for this id instead of a fresh one (LEDGER_EXISTS if taken). Later allocations skip past it. */
  ledgerId?: bigint
}

export interface Versioned<T> { value: T; version: bigint }

export type BookieState = 'writable' | 'read-only'
export const BOOKIE_STATES: readonly BookieState[] = ['writable', 'read-only']

export interface BookieInfo { id: string; address: string; state: BookieState; freeBytes: number; totalBytes: number; ledgers: number }

/**
 * `alive` is true while the bookie's lease (etcd) or heartbeat row (SQLite) has not expired. `lastSeen` is the
 * last time the store had proof of life: now for a live bookie; for a down one, its last heartbeat (SQLite) or
 * its last registration, update or deregistration (etcd, whose lease keepalives write nothing).
 */
export interface BookieStatus extends BookieInfo { alive: boolean; lastSeen: number }

export interface RegisterOptions {
  /** Liveness time to live, default DEFAULT_BOOKIE_TTL_MS; refreshed every ttl/3. etcd rounds up to whole seconds. */
  ttlMs?: number
}
export const DEFAULT_BOOKIE_TTL_MS = 10_000

export interface BookieRegistration {
  /** Replace the published info. BAD_VERSION if a newer registration of the same id took over; CLOSED after close(). */
  update(info: BookieInfo): Promise<void>
  /** Deregister now: the bookie is listed as down (alive: false) at once. Idempotent. */
  close(): Promise<void>
  /**
   * Aborted when the registration ends: reason CLOSED after close(), BAD_VERSION when another process registered
   * the same bookie id (this one then stops refreshing; a daemon should stop serving or re-register).
   */
  readonly signal: AbortSignal
}

export interface ListLedgersOptions { after?: bigint; limit?: number }

export interface KvEntry { key: string; value: Buffer; version: bigint }

export interface MetadataStore {
  /** The URL it was opened with (what child processes or other hosts pass to openMetadataStore). */
  readonly url: string
  /** Allocates a fresh id (never reused, even after delete) unless opts.ledgerId asks for one. */
  createLedger(meta: NewLedger, opts?: CreateLedgerOptions): Promise<Versioned<LedgerMetadata>>
  /** NO_SUCH_LEDGER if absent. */
  getLedger(id: bigint): Promise<Versioned<LedgerMetadata>>
  /** CAS: BAD_VERSION if written since expectedVersion; NO_SUCH_LEDGER if gone. */
  updateLedger(meta: LedgerMetadata, expectedVersion: bigint): Promise<Versioned<LedgerMetadata>>
  /** NO_SUCH_LEDGER if absent; BAD_VERSION if expectedVersion is given and differs. */
  deleteLedger(id: bigint, expectedVersion?: bigint): Promise<void>
  /** Ascending ids greater than `after`, at most `limit` of them. */
  listLedgers(opts?: ListLedgersOptions): Promise<bigint[]>
  /** Publish a bookie and keep it alive until the registration is closed (or the process dies). */
  registerBookie(info: BookieInfo, opts?: RegisterOptions): Promise<BookieRegistration>
  /** Every bookie ever registered, live or down, sorted by id. */
  listBookies(): Promise<BookieStatus[]>
  /** undefined if absent. */
  get(key: string): Promise<Versioned<Buffer> | undefined>
  /** expectedVersion null: the key must not exist yet; else it must be at that version (BAD_VERSION otherwise). Returns the new version. */
  put(key: string, value: Buffer, expectedVersion: bigint | null): Promise<bigint>
  /** Without expectedVersion, deleting an absent key is a no-op; with one, the key must be at that version (BAD_VERSION). */
  delete(key: string, expectedVersion?: bigint): Promise<void>
  /** Entries whose key starts with `prefix` ('' = all), sorted by key bytes. */
  list(prefix: string): Promise<KvEntry[]>
  /** Closes the registrations made through this store (they are listed as down at once), then the connection. Later calls: CLOSED. */
  close(): Promise<void>
}

export interface OpenOptions {
  /**
   * Bound on one operation. etcd: the whole call including fail-over between hosts (default 5000 ms).
   * SQLite: how long to wait for another process's write lock (busy_timeout, default 5000 ms).
   */
  timeoutMs?: number
}
