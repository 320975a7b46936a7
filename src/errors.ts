/**
 * Every error logctl raises carries a stable `code` (match on `err.code`, never on `instanceof`: two copies
 * of this package in one process would not share classes), a `retriable` hint and an optional `cause`.
 *
 * Three tables live here with one explicit mapping between them:
 *   - ErrorCode: the in-process code (`LOG_ERR_*`),
 *   - WIRE_STATUS: the HTTP status a bookie answers with for that code (the body carries the code too),
 *   - EXIT_CODES: the `logctl` process exit code for that code.
 * docs/errors.md lists every code; test/errors.test.ts keeps that list and this file equal.
 */

export const ErrorCode = {
  BAD_INPUT: 'LOG_ERR_BAD_INPUT',
  OUT_OF_RANGE: 'LOG_ERR_OUT_OF_RANGE',
  TOO_LARGE: 'LOG_ERR_TOO_LARGE',
  BAD_CHECKSUM: 'LOG_ERR_BAD_CHECKSUM',
  BAD_FRAME: 'LOG_ERR_BAD_FRAME',
  FENCED: 'LOG_ERR_FENCED',
  NO_SUCH_LEDGER: 'LOG_ERR_NO_SUCH_LEDGER',
  NO_SUCH_ENTRY: 'LOG_ERR_NO_SUCH_ENTRY',
  ENTRY_CONFLICT: 'LOG_ERR_ENTRY_CONFLICT',
  READ_ONLY: 'LOG_ERR_READ_ONLY',
  CORRUPT: 'LOG_ERR_CORRUPT',
  BAD_FORMAT_VERSION: 'LOG_ERR_BAD_FORMAT_VERSION',
  LOCKED: 'LOG_ERR_LOCKED',
  CLOSED: 'LOG_ERR_CLOSED',
  IO: 'LOG_ERR_IO',
  TIMEOUT: 'LOG_ERR_TIMEOUT',
  NOT_ENOUGH_BOOKIES: 'LOG_ERR_NOT_ENOUGH_BOOKIES',
  BAD_VERSION: 'LOG_ERR_BAD_VERSION',
  METADATA_UNAVAILABLE: 'LOG_ERR_METADATA_UNAVAILABLE',
  LEDGER_EXISTS: 'LOG_ERR_LEDGER_EXISTS',
  LEDGER_CLOSED: 'LOG_ERR_LEDGER_CLOSED',
  BOOKIE_UNAVAILABLE: 'LOG_ERR_BOOKIE_UNAVAILABLE',
  NO_SUCH_LOG: 'LOG_ERR_NO_SUCH_LOG',
  LOG_EXISTS: 'LOG_ERR_LOG_EXISTS',
  INTERNAL: 'LOG_ERR_INTERNAL',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

const RETRIABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.READ_ONLY,
  ErrorCode.IO,
  ErrorCode.TIMEOUT,
  ErrorCode.NOT_ENOUGH_BOOKIES,
  ErrorCode.METADATA_UNAVAILABLE,
  ErrorCode.BOOKIE_UNAVAILABLE,
  ErrorCode.BAD_VERSION,
])

/** HTTP status a bookie sends for each code (BookKeeper's StatusCode in spirit: one status per condition). */
export const WIRE_STATUS: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_INPUT]: 400,
  [ErrorCode.OUT_OF_RANGE]: 400,
  [ErrorCode.TOO_LARGE]: 413,
  [ErrorCode.BAD_CHECKSUM]: 422,
  [ErrorCode.BAD_FRAME]: 400,
  [ErrorCode.FENCED]: 409,
  [ErrorCode.NO_SUCH_LEDGER]: 404,
  [ErrorCode.NO_SUCH_ENTRY]: 404,
  [ErrorCode.ENTRY_CONFLICT]: 409,
  [ErrorCode.READ_ONLY]: 503,
  [ErrorCode.CORRUPT]: 500,
  [ErrorCode.BAD_FORMAT_VERSION]: 500,
  [ErrorCode.LOCKED]: 423,
  [ErrorCode.CLOSED]: 503,
  [ErrorCode.IO]: 500,
  [ErrorCode.TIMEOUT]: 504,
  [ErrorCode.NOT_ENOUGH_BOOKIES]: 503,
  [ErrorCode.BAD_VERSION]: 409,
  [ErrorCode.METADATA_UNAVAILABLE]: 503,
  [ErrorCode.LEDGER_EXISTS]: 409,
  [ErrorCode.LEDGER_CLOSED]: 409,
  [ErrorCode.BOOKIE_UNAVAILABLE]: 503,
  [ErrorCode.NO_SUCH_LOG]: 404,
  [ErrorCode.LOG_EXISTS]: 409,
  [ErrorCode.INTERNAL]: 500,
}

/** `logctl` exit codes. 0 = success, 1 = unexpected failure; the rest are documented in docs/errors.md. */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_INPUT]: 2,
  [ErrorCode.OUT_OF_RANGE]: 2,
  [ErrorCode.TOO_LARGE]: 2,
  [ErrorCode.BAD_FRAME]: 2,
  [ErrorCode.NO_SUCH_LEDGER]: 3,
  [ErrorCode.NO_SUCH_ENTRY]: 3,
  [ErrorCode.NO_SUCH_LOG]: 3,
  [ErrorCode.FENCED]: 4,
  [ErrorCode.LEDGER_CLOSED]: 4,
  [ErrorCode.NOT_ENOUGH_BOOKIES]: 5,
  [ErrorCode.BOOKIE_UNAVAILABLE]: 5,
  [ErrorCode.READ_ONLY]: 5,
  [ErrorCode.METADATA_UNAVAILABLE]: 6,
  [ErrorCode.CORRUPT]: 7,
  [ErrorCode.BAD_CHECKSUM]: 7,
  [ErrorCode.BAD_FORMAT_VERSION]: 7,
  [ErrorCode.LOCKED]: 8,
  [ErrorCode.ENTRY_CONFLICT]: 9,
  [ErrorCode.LEDGER_EXISTS]: 9,
  [ErrorCode.LOG_EXISTS]: 9,
  [ErrorCode.BAD_VERSION]: 9,
  [ErrorCode.TIMEOUT]: 10,
  [ErrorCode.IO]: 1,
  [ErrorCode.CLOSED]: 1,
  [ErrorCode.INTERNAL]: 1,
}

export interface LogErrorOptions {
  cause?: unknown
  /** Structured detail (file, offset, ledgerId…) safe to print and to send over the wire. */
  detail?: Record<string, unknown>
}

export class LogError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly detail: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: LogErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'LogError'
    this.code = code
    this.retriable = RETRIABLE.has(code)
    this.detail = options.detail ?? {}
  }

  toJSON(): {code: ErrorCode; message: string; retriable: boolean; detail: Record<string, unknown>} {
    return {code: this.code, message: this.message, retriable: this.retriable, detail: this.detail}
  }
}

export function isLogError(err: unknown): err is LogError {
  return typeof err === 'object' && err !== null && typeof (err as {code?: unknown}).code === 'string' &&
    ((err as {code: string}).code).startsWith('LOG_ERR_')
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.values(ErrorCode).includes(code as ErrorCode)
}

/** Any thrown value as a LogError: a LogError as is, anything else INTERNAL (keeping it as the cause). */
export function asLogError(err: unknown): LogError {
  return isLogError(err) ? (err as LogError) : new LogError(ErrorCode.INTERNAL, (err as Error)?.message ?? String(err), {cause: err})
}

/** Rebuild a LogError from its JSON form (as sent by a bookie). Unknown codes become INTERNAL. */
export function fromJSON(body: unknown): LogError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const code = isErrorCode(b['code']) ? b['code'] : ErrorCode.INTERNAL
  const message = typeof b['message'] === 'string' ? b['message'] : 'unknown error'
  const detail = typeof b['detail'] === 'object' && b['detail'] !== null ? (b['detail'] as Record<string, unknown>) : {}
  return new LogError(code, message, {detail})
}

/** Turn a node fs error into a LogError: ENOSPC/EDQUOT -> READ_ONLY, the rest -> IO. */
export function fromSystemError(err: unknown, what: string): LogError {
  if (isLogError(err)) return err
  const sys = err as NodeJS.ErrnoException
  if (sys?.code === 'ENOSPC' || sys?.code === 'EDQUOT') {
    return new LogError(ErrorCode.READ_ONLY, `${what}: disk full (${sys.code}); the bookie is read-only until space returns`, {cause: err})
  }
  return new LogError(ErrorCode.IO, `${what}: ${sys?.message ?? String(err)}`, {cause: err, detail: {errno: sys?.code}})
}
