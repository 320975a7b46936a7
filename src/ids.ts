import {ErrorCode, LogError} from './errors.js'

/**
 * Ledger ids are unsigned 64-bit, carried as `bigint` (or a decimal string on the wire and in JSON).
 * Entry ids are signed 64-bit in BookKeeper; logctl accepts 0 .. 2^53-1 so that the storage index can keep
 * them in a double without loss (9e15 entries per ledger is far beyond any real ledger). A LAC is an entry
 * id or -1 (NO_ENTRY: nothing confirmed yet).
 */
export const MAX_LEDGER_ID = (1n << 64n) - 1n
export const MAX_ENTRY_ID = BigInt(Number.MAX_SAFE_INTEGER)
export const NO_ENTRY = -1n

function toBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new LogError(ErrorCode.OUT_OF_RANGE, `${what} must be an integer, got ${value}`)
    return BigInt(value)
  }
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) return BigInt(value)
  throw new LogError(ErrorCode.BAD_INPUT, `${what} must be an integer (bigint, number or decimal string), got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`)
}

export function ledgerId(value: unknown): bigint {
  const v = toBigInt(value, 'ledger id')
  if (v < 0n || v > MAX_LEDGER_ID) throw new LogError(ErrorCode.OUT_OF_RANGE, `ledger id ${v} is outside 0..2^64-1`)
  return v
}

export function entryId(value: unknown): bigint {
  const v = toBigInt(value, 'entry id')
  if (v < 0n || v > MAX_ENTRY_ID) throw new LogError(ErrorCode.OUT_OF_RANGE, `entry id ${v} is outside 0..2^53-1`)
  return v
}

/** A LAC: -1 (nothing confirmed) or an entry id. */
export function lac(value: unknown): bigint {
  const v = toBigInt(value, 'LAC')
  if (v < NO_ENTRY || v > MAX_ENTRY_ID) throw new LogError(ErrorCode.OUT_OF_RANGE, `LAC ${v} is outside -1..2^53-1`)
  return v
}
