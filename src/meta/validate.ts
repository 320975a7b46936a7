/**
 * Input checks and outcome errors shared by both drivers, so that the same bad input or lost race gives the
 * same typed error from either. The checks run before anything is written (etcd: before any request;
 * SQLite: first thing inside the transaction), so a bad record never reaches the store; the decoder
 * (codec.ts) reuses them to refuse records that are malformed on the way back out.
 */
import {ErrorCode, LogError} from '../errors.js'
import {MAX_LEDGER_ID, NO_ENTRY} from '../ids.js'
import {BOOKIE_STATES, COMPRESSIONS, LEDGER_STATES, type BookieInfo, type LedgerMetadata, type ListLedgersOptions, type NewLedger} from './store.js'

/** etcd refuses requests over 1.5 MiB by default; 1 MiB of value leaves room for the key and the envelope. */
export const MAX_VALUE_BYTES = 1024 * 1024
export const MAX_KEY_BYTES = 4096
export const MIN_TTL_MS = 100
export const MAX_TTL_MS = 3_600_000

function bad(message: string, detail?: Record<string, unknown>): LogError {
  return new LogError(ErrorCode.BAD_INPUT, message, detail === undefined ? {} : {detail})
}

export function checkLedgerId(id: unknown, what = 'ledger id'): bigint {
  if (typeof id !== 'bigint') throw bad(`${what} must be a bigint, got ${typeof id}`)
  if (id < 0n || id > MAX_LEDGER_ID) throw bad(`${what} ${id} is outside 0..2^64-1`)
  return id
}

/** Versions come from the store and start at 1: 0 or less can only be a caller's mistake. */
export function checkVersion(version: unknown): bigint {
  if (typeof version !== 'bigint' || version < 1n) throw bad(`a version must be a bigint >= 1, got ${String(version)}`)
  return version
}

export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') throw bad('a key must be a non-empty string')
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw bad(`a key is at most ${MAX_KEY_BYTES} bytes`)
  return key
}

export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw bad('a prefix must be a string')
  if (Buffer.byteLength(prefix) > MAX_KEY_BYTES) throw bad(`a prefix is at most ${MAX_KEY_BYTES} bytes`)
  return prefix
}

export function checkValue(value: unknown): Buffer {
  if (!(value instanceof Uint8Array)) throw bad('a value must be a Buffer')
  if (value.byteLength > MAX_VALUE_BYTES) {
    throw new LogError(ErrorCode.TOO_LARGE, `a value is at most ${MAX_VALUE_BYTES} bytes, got ${value.byteLength}`)
  }
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

export function checkListOptions(opts: ListLedgersOptions | undefined): {after: bigint; limit: number | undefined} {
  const after = opts?.after === undefined ? -1n : checkLedgerId(opts.after, 'listLedgers `after`')
  const limit = opts?.limit
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw bad(`listLedgers limit must be an integer >= 1, got ${String(limit)}`)
  return {after, limit}
}

export function checkTtl(ttlMs: unknown): number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
    throw bad(`ttlMs must be an integer in ${MIN_TTL_MS}..${MAX_TTL_MS}, got ${String(ttlMs)}`)
  }
  return ttlMs
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(`${what} must be an integer >= 0, got ${String(value)}`)
  return value
}

function nonEmpty(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw bad(`${what} must be a non-empty string`)
  return value
}

export function checkBookieInfo(info: unknown): BookieInfo {
  if (typeof info !== 'object' || info === null) throw bad('bookie info must be an object')
  const b = info as Record<string, unknown>
  const state = b['state']
  if (!BOOKIE_STATES.includes(state as BookieInfo['state'])) throw bad(`bookie state must be one of ${BOOKIE_STATES.join(', ')}, got ${String(state)}`)
  return {
    id: nonEmpty(b['id'], 'bookie id'),
    address: nonEmpty(b['address'], 'bookie address'),
    state: state as BookieInfo['state'],
    freeBytes: count(b['freeBytes'], 'freeBytes'),
    totalBytes: count(b['totalBytes'], 'totalBytes'),
    ledgers: count(b['ledgers'], 'ledgers'),
  }
}

/**
 * The shape and the invariants of a ledger record (E >= Qw >= Qa >= 1, ensembles sorted from entry 0, one
 * distinct bookie per ensemble index, lastEntryId -1 until CLOSED). Returns a copy that shares nothing with
 * the caller's object, so a caller mutating its object later cannot change what the store holds.
 */
export function checkNewLedger(meta: unknown): NewLedger {
  if (typeof meta !== 'object' || meta === null) throw bad('ledger metadata must be an object')
  const m = meta as Record<string, unknown>
  const ensembleSize = count(m['ensembleSize'], 'ensembleSize')
  const writeQuorum = count(m['writeQuorum'], 'writeQuorum')
  const ackQuorum = count(m['ackQuorum'], 'ackQuorum')
  if (!(ensembleSize >= writeQuorum && writeQuorum >= ackQuorum && ackQuorum >= 1)) {
    throw bad(`need ensembleSize >= writeQuorum >= ackQuorum >= 1, got E=${ensembleSize} Qw=${writeQuorum} Qa=${ackQuorum}`)
  }
  const state = m['state'] as LedgerMetadata['state']
  if (!LEDGER_STATES.includes(state)) throw bad(`ledger state must be one of ${LEDGER_STATES.join(', ')}, got ${String(state)}`)
  const lastEntryId = m['lastEntryId']
  if (typeof lastEntryId !== 'bigint' || lastEntryId < NO_ENTRY) throw bad(`lastEntryId must be a bigint >= -1, got ${String(lastEntryId)}`)
  if (state !== 'CLOSED' && lastEntryId !== NO_ENTRY) throw bad(`lastEntryId stays -1 until the ledger is CLOSED (state ${state}, got ${lastEntryId})`)
  const length = m['length']
  if (typeof length !== 'bigint' || length < 0n) throw bad(`length must be a bigint >= 0, got ${String(length)}`)
  const compression = m['compression'] as LedgerMetadata['compression']
  if (!COMPRESSIONS.includes(compression)) throw bad(`compression must be one of ${COMPRESSIONS.join(', ')}, got ${String(compression)}`)
  const createdAt = m['createdAt']
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) throw bad(`createdAt must be ms since the epoch, got ${String(createdAt)}`)
  return {
    ensembleSize, writeQuorum, ackQuorum, state, lastEntryId, length, compression, createdAt,
    ensembles: checkEnsembles(m['ensembles'], ensembleSize),
    customMetadata: checkCustomMetadata(m['customMetadata']),
  }
}

export function checkLedger(meta: unknown): LedgerMetadata {
  const ledgerId = checkLedgerId((meta as {ledgerId?: unknown} | null)?.ledgerId)
  return {ledgerId, ...checkNewLedger(meta)}
}

function checkEnsembles(value: unknown, ensembleSize: number): LedgerMetadata['ensembles'] {
  if (!Array.isArray(value) || value.length === 0) throw bad('ensembles must be a non-empty array')
  let previous = -1n
  return value.map((e: unknown, i) => {
    const ens = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>
    const first = ens['firstEntryId']
    if (typeof first !== 'bigint') throw bad(`ensembles[${i}].firstEntryId must be a bigint`)
    if (i === 0 && first !== 0n) throw bad(`the first ensemble must start at entry 0, got ${first}`)
    if (first <= previous) throw bad(`ensembles must be sorted by strictly increasing firstEntryId (ensembles[${i}] starts at ${first})`)
    previous = first
    const bookies = ens['bookies']
    if (!Array.isArray(bookies) || bookies.length !== ensembleSize) throw bad(`ensembles[${i}] must list exactly ensembleSize=${ensembleSize} bookies`)
    const ids = bookies.map((b: unknown) => nonEmpty(b, `ensembles[${i}] bookie id`))
    if (new Set(ids).size !== ids.length) throw bad(`ensembles[${i}] lists a bookie twice: ${ids.join(',')}`)
    return {firstEntryId: first, bookies: ids}
  })
}

function checkCustomMetadata(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('customMetadata must be an object of strings')
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw bad(`customMetadata[${JSON.stringify(k)}] must be a string`)
    out[k] = v
  }
  return out
}

export function noSuchLedger(id: bigint): LogError {
  return new LogError(ErrorCode.NO_SUCH_LEDGER, `ledger ${id} does not exist`, {detail: {ledgerId: id.toString()}})
}

/** A lost compare-and-swap: `expected` null means the caller wanted the key to be absent. */
export function badVersion(what: string, expected: bigint | null | undefined): LogError {
  const wanted = expected === null ? 'absent' : expected === undefined ? 'present' : `at version ${expected}`
  return new LogError(ErrorCode.BAD_VERSION, `${what} is no longer ${wanted}: another writer changed it first`,
    {detail: {expectedVersion: expected === null || expected === undefined ? null : expected.toString()}})
}

export function closedStore(url: string): LogError {
  return new LogError(ErrorCode.CLOSED, `the metadata store ${url} is closed`)
}
