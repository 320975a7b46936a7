/**
 * The stored form of ledger and bookie records, the same in both drivers: UTF-8 JSON, bigints as decimal
 * strings, and a `format` number first.
 *
 *   ledger: {"format":1,"ledgerId":"7","ensembleSize":3,"writeQuorum":2,"ackQuorum":2,"state":"OPEN",
 *            "lastEntryId":"-1","length":"0","ensembles":[{"firstEntryId":"0","bookies":["b1","b2","b3"]}],
 *            "compression":"none","customMetadata":{},"createdAt":1764100000000}
 *   bookie: {"format":1,"id":"b1","address":"127.0.0.1:3181","state":"writable","freeBytes":1,"totalBytes":2,
 *            "ledgers":0,"lastSeen":1764100000000,"session":"<uuid>"}
 *
 * Evolution: fields a reader may ignore can be added under the same format. A field that a reader must keep
 * when it rewrites a record needs a new format number, because an older reader would drop it on its next
 * CAS; older readers refuse newer formats (BAD_FORMAT_VERSION) instead of losing data. A record that is not
 * valid JSON or breaks an invariant is CORRUPT: the store never wrote it, so someone else did.
 */
import {ErrorCode, LogError, isLogError} from '../errors.js'
import type {BookieInfo, LedgerMetadata} from './store.js'
import {checkBookieInfo, checkLedger} from './validate.js'

export const RECORD_FORMAT = 1

export interface BookieRecord extends BookieInfo {
  lastSeen: number
  /** Which registration wrote it: a newer registration of the same id writes a new session. */
  session: string
}

export function encodeLedger(meta: LedgerMetadata): string {
  return JSON.stringify({
    format: RECORD_FORMAT,
    ledgerId: meta.ledgerId.toString(),
    ensembleSize: meta.ensembleSize,
    writeQuorum: meta.writeQuorum,
    ackQuorum: meta.ackQuorum,
    state: meta.state,
    lastEntryId: meta.lastEntryId.toString(),
    length: meta.length.toString(),
    ensembles: meta.ensembles.map(e => ({firstEntryId: e.firstEntryId.toString(), bookies: e.bookies})),
    compression: meta.compression,
    customMetadata: meta.customMetadata,
    createdAt: meta.createdAt,
  })
}

/** `where` names the record in errors (a key or a row), so an operator can find it; `id` is the id it is stored under. */
export function decodeLedger(text: string, where: string, id: bigint): LedgerMetadata {
  const o = parse(text, where)
  const big = (v: unknown): unknown => (typeof v === 'string' && /^-?\d{1,20}$/.test(v) ? BigInt(v) : v)
  const ensembles = Array.isArray(o['ensembles'])
    ? o['ensembles'].map((e: unknown) => {
      const r = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>
      return {...r, firstEntryId: big(r['firstEntryId'])}
    })
    : o['ensembles']
  const meta = reject(where, () => checkLedger({
    ...o, ledgerId: big(o['ledgerId']), lastEntryId: big(o['lastEntryId']), length: big(o['length']), ensembles,
  }))
  if (meta.ledgerId !== id) throw new LogError(ErrorCode.CORRUPT, `metadata record ${where} holds ledger ${meta.ledgerId}, not ${id}`, {detail: {where}})
  return meta
}

export function encodeBookie(rec: BookieRecord): string {
  const {id, address, state, freeBytes, totalBytes, ledgers, lastSeen, session} = rec
  return JSON.stringify({format: RECORD_FORMAT, id, address, state, freeBytes, totalBytes, ledgers, lastSeen, session})
}

export function decodeBookie(text: string, where: string): BookieRecord {
  const o = parse(text, where)
  const info = reject(where, () => checkBookieInfo(o))
  const lastSeen = o['lastSeen']
  const session = o['session']
  if (typeof lastSeen !== 'number' || typeof session !== 'string') {
    throw new LogError(ErrorCode.CORRUPT, `bookie record ${where} lacks lastSeen or session`, {detail: {where}})
  }
  return {...info, lastSeen, session}
}

function parse(text: string, where: string): Record<string, unknown> {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (err) {
    throw new LogError(ErrorCode.CORRUPT, `metadata record ${where} is not valid JSON`, {cause: err, detail: {where}})
  }
  if (typeof o !== 'object' || o === null) throw new LogError(ErrorCode.CORRUPT, `metadata record ${where} is not a JSON object`, {detail: {where}})
  const rec = o as Record<string, unknown>
  const format = rec['format']
  if (typeof format !== 'number') throw new LogError(ErrorCode.CORRUPT, `metadata record ${where} has no format number`, {detail: {where}})
  if (format !== RECORD_FORMAT) {
    throw new LogError(ErrorCode.BAD_FORMAT_VERSION,
      `metadata record ${where} has format ${format}; this logctl reads format ${RECORD_FORMAT} (upgrade logctl)`, {detail: {where, format}})
  }
  return rec
}

/** Validation failures on the way out are CORRUPT, not BAD_INPUT: the caller's input is not at fault. */
function reject<T>(where: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (isLogError(err) && err.code === ErrorCode.BAD_INPUT) {
      throw new LogError(ErrorCode.CORRUPT, `metadata record ${where} is malformed: ${err.message}`, {cause: err, detail: {where}})
    }
    throw err
  }
}

/**
 * Ledger ids as fixed-width decimal (20 digits holds 2^64-1), so that byte order is numeric order: both
 * drivers key ledgers this way and list them with a plain range scan.
 */
export function padLedgerId(id: bigint): string {
  return id.toString().padStart(20, '0')
}

/** The first key after every key that starts with `prefix` (etcd's range_end rule); undefined = no bound. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i]!
    if (byte < 0xff) {
      end[i] = byte + 1
      return end.subarray(0, i + 1)
    }
  }
  return undefined
}
