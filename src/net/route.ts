/**
 * What a route handler sees and returns, and the few helpers every handler shares: typed replies (a LogError
 * always becomes WIRE_STATUS[code] + a JSON body, never a bare 500) and strict query parameters.
 */
import http2, {type IncomingHttpHeaders, type ServerHttp2Stream} from 'node:http2'
import type {StorageEngine} from '../engine/engine.js'
import {ErrorCode, LogError, WIRE_STATUS, asLogError} from '../errors.js'
import {FRAMES_TYPE, jsonStringify} from './frames.js'
import type {BookieMetrics} from './metrics.js'

export const JSON_TYPE = 'application/json'

/** The engine calls a bookie server makes (StorageEngine satisfies it). */
export type BookieEngine = Pick<StorageEngine, 'dir' | 'readOnly' | 'verifyOffloadBytes' | 'addBatch' | 'readRangeWith' | 'ledger' | 'waitForLac' | 'updateLac' | 'hintLac' | 'noteClosed' | 'closeNotice' | 'fence' | 'deleteLedger' | 'status'>

/** pino's Logger fits; so does a console-like object with these methods. */
export interface NetLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface ServerLimits {
  maxBodyBytes: number
  bodyTimeoutMs: number
  maxReadBytes: number
  maxReadEntries: number
  maxWaitMs: number
}

export interface ServerContext {
  engine: BookieEngine
  metrics: BookieMetrics
  limits: ServerLimits
  logger: NetLogger
  /** Aborted when the server starts shutting down (long polls answer at once). */
  closing: AbortSignal
  status(): Promise<Record<string, unknown>>
}

export interface RouteRequest {
  method: string
  /** The route pattern's capture groups. */
  params: string[]
  query: URLSearchParams
  headers: IncomingHttpHeaders
  stream: ServerHttp2Stream
}

export interface Reply {
  status: number
  type: string
  body: Buffer | string
  headers?: Record<string, string>
}

export interface Route {
  /** Metrics label. */
  name: string
  method: string
  pattern: RegExp
  /** Routes that read a request body say so; the others have theirs discarded. */
  body?: boolean
  /** The reply, or undefined when the handler answered on the stream itself (a long-lived stream). */
  handle(req: RouteRequest): Promise<Reply | undefined>
}


/**
 * A closed engine means the bookie is going away: tell the client so in a form it retries elsewhere
 * (CLOSED is not retriable; BOOKIE_UNAVAILABLE is).
 */
export function forWire(err: LogError): LogError {
  if (err.code !== ErrorCode.CLOSED) return err
  return new LogError(ErrorCode.BOOKIE_UNAVAILABLE, `the bookie is shutting down: ${err.message}`, {detail: err.detail})
}

export function errorReply(err: unknown): Reply {
  const e = forWire(asLogError(err))
  return {status: WIRE_STATUS[e.code] ?? 500, type: JSON_TYPE, body: jsonStringify(e.toJSON())}
}

export function jsonReply(value: unknown): Reply {
  return {status: 200, type: JSON_TYPE, body: jsonStringify(value)}
}

export function framesReply(body: Buffer, headers?: Record<string, string>): Reply {
  return headers === undefined ? {status: 200, type: FRAMES_TYPE, body} : {status: 200, type: FRAMES_TYPE, body, headers}
}

/** A required or defaulted query parameter, parsed by `parse` (an ids.ts parser or queryInt). */
export function param<T>(query: URLSearchParams, name: string, parse: (v: string) => T, fallback?: T): T {
  const v = query.get(name)
  if (v === null || v === '') {
    if (fallback !== undefined) return fallback
    throw new LogError(ErrorCode.BAD_INPUT, `query parameter ${name} is required`, {detail: {param: name}})
  }
  return parse(v)
}

export function intIn(name: string, min: number, max: number): (v: string) => number {
  return v => {
    const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN
    if (!(n >= min && n <= max)) throw new LogError(ErrorCode.BAD_INPUT, `query parameter ${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v.slice(0, 40))}`, {detail: {param: name}})
    return n
  }
}

/** A 0/1 query parameter. */
export function flag(name: string): (v: string) => boolean {
  return v => {
    if (v !== '0' && v !== '1') throw new LogError(ErrorCode.BAD_INPUT, `query parameter ${name} must be 0 or 1, got ${JSON.stringify(v.slice(0, 40))}`, {detail: {param: name}})
    return v === '1'
  }
}

/**
 * A stream answered before its request body was all read (a refused upload, an ended add stream): once the
 * answer is out, ask the client to stop sending (RST_STREAM NO_ERROR, RFC 9113 §8.1). Node flushes the
 * answer before the reset.
 */
export function stopUploadAfterAnswer(stream: ServerHttp2Stream): void {
  if (stream.readableEnded) return
  stream.once('finish', () => {
    if (!stream.readableEnded && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR)
  })
}
