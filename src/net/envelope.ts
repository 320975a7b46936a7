/**
 * Messages on a long-lived add stream (POST /v1/entries/stream, docs/PROTOCOL.md "Add streams"). All
 * integers big-endian:
 *
 *   request   = length:u32 requestId:u32 body:byte{length - 4}              ; body = one ADD_BATCH (or LAC_HINTS) message
 *   response  = length:u32 requestId:u32 status:u8 body:byte{length - 5}    ; in completion order
 *     status 0 = body is the ADD_RESULTS message answering that request
 *     status 1 = the whole request was refused; body = UTF-8 JSON {code, message, detail}
 *   requestId FATAL (0xFFFFFFFF) in a response: the stream itself failed (status 1, then the stream ends)
 *   requestId ONE_WAY (0xFFFFFFFE) in a request: a LAC_HINTS message, never answered
 *
 * The envelope is what per-request HTTP/2 streams gave for free (one stream, one answer) at ~0.2-0.3 ms of
 * CPU per request on each side; a stream of envelopes costs a few µs per batch (docs/BENCHMARKS.md).
 * EnvelopeReader checks every length before keeping anything for it and never allocates from one: a
 * message's bytes stay views of the chunks they arrived in.
 */
import {ErrorCode, LogError} from '../errors.js'

export const STREAM_TYPE = 'application/x-logctl-stream'
export const FATAL_REQUEST_ID = 0xffffffff
/**
 * The request id of a one-way message (LAC_HINTS): adds never use it, so an answer to it (an older bookie
 * refusing a kind it does not know) can never be taken for an add's.
 */
export const ONE_WAY_REQUEST_ID = 0xfffffffe
/** length + requestId */
export const ENVELOPE_HEAD = 8
/**
 * A response's status byte: OK, REFUSED (the body is the error), and CLOSED, a tail stream's last message
 * (a LAC and entries, as OK) sent when the writer announced the ledger closed and the follower has it all.
 */
export const RequestStatus = {OK: 0, REFUSED: 1, CLOSED: 2} as const

/** A request or response envelope around `body`: one buffer, `extra` bytes (the response status) after the head. */
export function envelope(requestId: number, body: Buffer, status?: number): Buffer {
  const extra = status === undefined ? 0 : 1
  const out = Buffer.allocUnsafe(ENVELOPE_HEAD + extra + body.length)
  writeEnvelopeHead(out, requestId, extra + body.length)
  if (status !== undefined) out[ENVELOPE_HEAD] = status
  body.copy(out, ENVELOPE_HEAD + extra)
  return out
}

/** The 8-byte head of a message whose bytes after the head (status included) number `rest`. */
export function writeEnvelopeHead(buf: Buffer, requestId: number, rest: number): void {
  buf.writeUInt32BE(4 + rest, 0)
  buf.writeUInt32BE(requestId, 4)
}

export interface Envelope {
  requestId: number
  /** The message after requestId, as the chunks it arrived in (views). */
  parts: Buffer[]
  length: number
}

/**
 * Splits a byte stream into envelopes. push() throws a LogError (BAD_FRAME, or TOO_LARGE for a length
 * over maxBody) as soon as a head is wrong; after that the reader stays failed.
 */
export class EnvelopeReader {
  private readonly head = Buffer.alloc(ENVELOPE_HEAD)
  private headFill = 0
  /** Bytes of the current message still to come; -1 while reading a head. */
  private left = -1
  private current: Envelope | undefined
  private failed: LogError | undefined

  /** `minBody`: the smallest valid message after requestId; `maxBody`: the largest. */
  constructor(private readonly minBody: number, private readonly maxBody: number) {}

  /** Inside a message (some of its bytes arrived, not all). */
  get partial(): boolean {
    return this.headFill > 0 || this.left >= 0
  }

  push(chunk: Buffer, onMessage: (e: Envelope) => void): void {
    if (this.failed) throw this.failed
    let o = 0
    while (o < chunk.length) {
      if (this.left < 0) {
        const n = Math.min(ENVELOPE_HEAD - this.headFill, chunk.length - o)
        chunk.copy(this.head, this.headFill, o, o + n)
        this.headFill += n
        o += n
        if (this.headFill < ENVELOPE_HEAD) break
        this.headFill = 0
        const length = this.head.readUInt32BE(0)
        const requestId = this.head.readUInt32BE(4)
        const body = length - 4
        if (length < 4 || body < this.minBody) throw this.fail(new LogError(ErrorCode.BAD_FRAME, `stream message of length ${length} is shorter than the smallest message (${this.minBody + 4})`, {detail: {length, requestId}}))
        if (body > this.maxBody) throw this.fail(new LogError(ErrorCode.TOO_LARGE, `stream message of ${body} bytes is over the limit of ${this.maxBody}`, {detail: {size: body, limit: this.maxBody, requestId}}))
        this.current = {requestId, parts: [], length: body}
        this.left = body
      }
      const n = Math.min(this.left, chunk.length - o)
      if (n > 0) this.current!.parts.push(chunk.subarray(o, o + n))
      this.left -= n
      o += n
      if (this.left === 0) {
        const e = this.current!
        this.current = undefined
        this.left = -1
        onMessage(e)
      }
    }
  }

  private fail(err: LogError): LogError {
    this.failed = err
    return err
  }
}

/** A message's parts as one buffer (a view when it arrived in one chunk). */
export function joined(e: Envelope): Buffer {
  return e.parts.length === 1 ? e.parts[0]! : Buffer.concat(e.parts, e.length)
}
