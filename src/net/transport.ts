/**
 * What a bookie client needs from an HTTP/2 client library: one request at a time (many concurrently),
 * cancellable through an AbortSignal, answering with status, headers and a bounded body. Two
 * implementations: transport-http2.ts (node:http2) and transport-undici.ts (undici's H2CClient).
 *
 * Contract: request() rejects only with a LogError — the signal's reason when it was aborted (the caller's
 * TIMEOUT or CLOSED), BOOKIE_UNAVAILABLE for anything the connection did (refused, reset, GOAWAY, a stream
 * cut before its answer ended), TOO_LARGE for an answer over maxResponseBytes. Connections are made lazily
 * and remade after a failure.
 */
import {ErrorCode, LogError, fromJSON, isLogError} from '../errors.js'

export type TransportName = 'http2' | 'undici'

export interface TransportRequest {
  method: 'GET' | 'POST' | 'DELETE'
  /** Path and query. */
  path: string
  body?: Buffer
  signal: AbortSignal
  maxResponseBytes: number
}

export interface TransportResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The body as it arrived: frame decoders read the chunks in place (decodeEntries(res.chunks)). */
  chunks: Buffer[]
  /** The body in one buffer, joined on first use (JSON answers, error bodies). */
  readonly body: Buffer
}

/**
 * A response whose body stays in the chunks it came in unless someone asks for it whole: read answers
 * (entries) are decoded from the chunks, so their payloads are views of what the socket delivered rather
 * than of a joined copy of every answer.
 */
export function transportResponse(status: number, headers: TransportResponse['headers'], chunks: Buffer[], size: number): TransportResponse {
  let joined: Buffer | undefined
  return {
    status, headers, chunks,
    get body(): Buffer {
      joined ??= chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      return joined
    },
  }
}

export interface Transport {
  readonly name: TransportName
  request(req: TransportRequest): Promise<TransportResponse>
  /**
   * A request that started at `since` (performance.now()) timed out. If nothing at all came back over the
   * connection since then, the peer is unresponsive (stopped, partitioned): drop the connection so that the
   * next request makes a fresh one instead of queueing behind a dead one.
   */
  timedOut(since: number): void
  close(): Promise<void>
}

/** Stream-window and session-window sizes for the receiving side of a client (large read answers). */
export const CLIENT_STREAM_WINDOW_BYTES = 8 * 1024 * 1024
export const CLIENT_SESSION_WINDOW_BYTES = 64 * 1024 * 1024

export function unavailable(address: string, err: unknown): LogError {
  if (isLogError(err)) return err
  const e = err as NodeJS.ErrnoException | undefined
  const why = e?.code !== undefined ? `${e.code}: ${e.message}` : e?.message ?? String(err)
  return new LogError(ErrorCode.BOOKIE_UNAVAILABLE, `bookie ${address} is unavailable (${why})`, {cause: err, detail: {bookie: address, errno: e?.code}})
}

export function responseTooLarge(address: string, limit: number): LogError {
  return new LogError(ErrorCode.TOO_LARGE, `bookie ${address} sent an answer over ${limit} bytes`, {detail: {bookie: address, limit}})
}

/** A bookie's JSON error body ({code, message, detail}) as a LogError; undefined when the body is not one. */
export function errorFromBody(body: Buffer): LogError | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'))
    if (typeof v === 'object' && v !== null && typeof (v as {code?: unknown}).code === 'string') return fromJSON(v)
  } catch {
    // not one of ours
  }
  return undefined
}

/** A non-200 answer: the bookie's own error when the body carries one, else a code from the HTTP status. */
export function httpError(address: string, status: number, body: Buffer): LogError {
  const own = errorFromBody(body)
  if (own) return own
  const code = status === 502 || status === 503 || status === 504 ? ErrorCode.BOOKIE_UNAVAILABLE : ErrorCode.INTERNAL
  return new LogError(code, `bookie ${address} answered HTTP ${status} without an error code`, {detail: {bookie: address, status}})
}
