/**
 * Binary frames of the bookie protocol (docs/PROTOCOL.md). Byte grammar, all integers big-endian:
 *
 *   message       = header item{count}                 ; exactly `count` items, nothing after the last one
 *   header        = magic:u16 (0x4C47, "LG") version:u8 (2) kind:u8 count:u32
 *
 *   kind 1 ADD_BATCH (request body of POST /v1/entries; entries of any ledgers)
 *     item        = flags:u8 digest:u32 ledgerId:u64 entryId:u64 lac:i64 len:u32 payload:byte{len}
 *     flags       = bit 0 RECOVERY (accepted on a fenced ledger), bit 1 COMPRESS (store LZ4); others 0
 *   kind 2 ADD_RESULTS (answer to ADD_BATCH: one item per add, in request order)
 *     item        = status:u8 len:u32 error:byte{len}
 *     status 0    = stored durably (len = 0)
 *     status 1    = refused; error = UTF-8 JSON {code, message, detail} (len 2..MAX_ERROR_BYTES)
 *   kind 3 ENTRIES (answer to GET /v1/ledgers/{id}/entries: entries ascending)
 *     item        = digest:u32 ledgerId:u64 entryId:u64 lac:i64 len:u32 payload:byte{len}
 *   kind 4 LAC_HINTS (a one-way message on an add stream: a writer's LAC for a bookie that is slow to
 *                 answer, so that its followers need not wait for its next batch; never answered)
 *     item        = ledgerId:u64 lac:i64
 *
 * An entry's digest covers ledgerId | entryId | lac | len | payload (src/checksum.ts), which is exactly how
 * those fields follow one another after `digest` (version 2 put the digest first for this; version 1 had it
 * after lac): decoded entries carry that span as `signed`, the bytes received in one piece, so whoever
 * verifies the digest does it with one CRC over it (checksum.ts digestOf).
 *
 * Every item is a fixed-size head whose last field is the length of the variable part ("blob") that
 * follows (LAC_HINTS items have neither). Bounds, each checked BEFORE anything is kept for it: count <=
 * (bytes the message may still hold - header) / head size; len <= the kind's hard maximum (payload
 * MAX_PAYLOAD_BYTES = 4 MiB, error 8 KiB) and <= the bytes the message may still hold; the whole message
 * <= the decoder's maxBytes (and == the declared length when one is known, e.g. content-length). The decoder never allocates from a length it
 * read: it keeps the chunks it was given and slices payloads out of them at the end.
 * A violated grammar (or a length beyond the declared message length) is BAD_FRAME; a payload or a message
 * over its hard maximum is TOO_LARGE.
 */
import {crc} from '../checksum.js'
import {ErrorCode, LogError, fromJSON, isLogError} from '../errors.js'
import {writeInt64BE} from '../bytes.js'
import type {AddRequest, StoredEntry} from '../engine/engine.js'
import * as ids from '../ids.js'

export const MAGIC = 0x4c47
export const VERSION = 2
export const HEADER_BYTES = 8
/** Hard cap of one entry on the wire (a bookie's configured limit, default 1 MiB, is checked per entry). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
export const MAX_ERROR_BYTES = 8 * 1024
/** content-type of a body made of frames. */
export const FRAMES_TYPE = 'application/x-logctl-frames'
/** Response header of a range read cut short by a limit: the entry id to continue from. */
export const NEXT_HEADER = 'x-logctl-next'
/** Response header of a tail read: the bookie's LAC when it answered. */
export const LAC_HEADER = 'x-logctl-lac'
/** Default cap of one message (a request body or a response). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

export const FrameKind = {ADD_BATCH: 1, ADD_RESULTS: 2, ENTRIES: 3, LAC_HINTS: 4} as const
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]

export const AddFlag = {RECOVERY: 1, COMPRESS: 2} as const
const KNOWN_FLAGS = AddFlag.RECOVERY | AddFlag.COMPRESS

/**
 * One add as it travels: the engine's AddRequest (bookie-client.ts calls it AddFrame). A sender may give the
 * entry in two parts: `prefix` goes on the wire right before `payload`, and the entry is the two together
 * (the log layer's 16-byte header, without copying the payload behind it); decoded items have no prefix.
 * A sender may also leave the digest to the encoder (`digest: DIGEST_AT_ENCODE`): see encodeAddBatch.
 */
export type AddItem = AddRequest & {prefix?: Buffer}

/**
 * One entry as a read answer carries it: the engine's StoredEntry (bookie-client.ts calls it ReadEntry);
 * decoded, with the bytes its digest covers as they arrived (`signed`, see the grammar above).
 */
export type EntryItem = StoredEntry & {signed?: Buffer | undefined}

/** undefined = stored; a LogError = refused. */
export type AddOutcome = LogError | undefined

/**
 * An add's digest to be computed by encodeAddBatch from the bytes it writes: the head's fields after the
 * digest and the entry follow one another exactly as the digest covers them, so it is one CRC over the
 * frame's own bytes, stored back on the item for its next encodes (the same entry goes to every bookie of
 * its write set, and again after an ensemble change).
 */
export const DIGEST_AT_ENCODE = -1

const ADD_HEAD = 1 + 4 + 8 + 8 + 8 + 4
const LAC_HINT_HEAD = 8 + 8
const RESULT_HEAD = 1 + 4
const ENTRY_HEAD = 4 + 8 + 8 + 8 + 4
/** Where the digest's input (ledgerId onwards) starts in an add's and in an entry's head. */
const ADD_SIGNED = 1 + 4
const ENTRY_SIGNED = 4

function badFrame(message: string, detail: Record<string, unknown> = {}): LogError {
  return new LogError(ErrorCode.BAD_FRAME, message, {detail})
}

function tooLarge(message: string, size: number, limit: number): LogError {
  return new LogError(ErrorCode.TOO_LARGE, message, {detail: {size, limit}})
}

function writeHeader(buf: Buffer, kind: FrameKind, count: number): number {
  buf.writeUInt16BE(MAGIC, 0)
  buf.writeUInt8(VERSION, 2)
  buf.writeUInt8(kind, 3)
  buf.writeUInt32BE(count, 4)
  return HEADER_BYTES
}

/**
 * What an error message calls an item ("add 3/17"): built only when there is an error (a string per item
 * built up front was ~100 bytes of garbage and two BigInt-to-string conversions per entry encoded).
 */
type ItemKind = 'add' | 'entry'
type Item = {ledgerId: unknown; entryId: unknown}
const named = (kind: ItemKind, item: Item): string => `${kind} ${String(item.ledgerId)}/${String(item.entryId)}`

function checkPayload(payload: unknown, kind: ItemKind, item: Item): Buffer {
  if (!Buffer.isBuffer(payload)) throw new LogError(ErrorCode.BAD_INPUT, `${named(kind, item)}: payload must be a Buffer`)
  checkPayloadLength(payload.length, kind, item)
  return payload
}

function checkPayloadLength(length: number, kind: ItemKind, item: Item): number {
  if (length > MAX_PAYLOAD_BYTES) throw tooLarge(`${named(kind, item)}: payload of ${length} bytes is over the wire limit of ${MAX_PAYLOAD_BYTES}`, length, MAX_PAYLOAD_BYTES)
  return length
}

function checkDigest(digest: unknown, kind: ItemKind, item: Item): number {
  if (!Number.isInteger(digest) || (digest as number) < 0 || (digest as number) > 0xffffffff) {
    throw new LogError(ErrorCode.BAD_INPUT, `${named(kind, item)}: digest must be an unsigned 32-bit integer`)
  }
  return digest as number
}

// ---- ADD_BATCH -------------------------------------------------------------------------------------

export function addBatchEncodingLength(items: readonly AddItem[]): number {
  let n = HEADER_BYTES
  for (const it of items) n += ADD_HEAD + (it.prefix?.length ?? 0) + it.payload.length
  return n
}

/**
 * Encode a batch of adds; throws BAD_INPUT / OUT_OF_RANGE / TOO_LARGE for an add that cannot travel. With
 * `into` (at least addBatchEncodingLength(items) bytes) the message is written there and a view of it is
 * returned, so a client can reuse its request buffers. An item whose digest is DIGEST_AT_ENCODE gets it
 * computed from the bytes written, and set on the item.
 */
export function encodeAddBatch(items: readonly AddItem[], into?: Buffer): Buffer {
  const length = addBatchEncodingLength(items)
  if (into !== undefined && into.length < length) throw new LogError(ErrorCode.INTERNAL, `encodeAddBatch: ${into.length} bytes given for a ${length}-byte message`)
  const buf = into === undefined ? Buffer.allocUnsafe(length) : into.subarray(0, length)
  let o = writeHeader(buf, FrameKind.ADD_BATCH, items.length)
  for (const it of items) {
    const ledgerId = ids.ledgerId(it.ledgerId)
    const entryId = ids.entryId(it.entryId)
    const payload = checkPayload(it.payload, 'add', it)
    const prefix = it.prefix
    const length = prefix === undefined ? payload.length : checkPayloadLength(checkPayload(prefix, 'add', it).length + payload.length, 'add', it)
    const flags = (it.recovery === true ? AddFlag.RECOVERY : 0) | (it.compress === true ? AddFlag.COMPRESS : 0)
    const at = o
    const computed = it.digest === DIGEST_AT_ENCODE
    buf[o] = flags
    if (!computed) buf.writeUInt32BE(checkDigest(it.digest, 'add', it), o + 1)
    writeInt64BE(buf, ledgerId, o + 5)
    writeInt64BE(buf, entryId, o + 13)
    writeInt64BE(buf, ids.lac(it.lac), o + 21)
    o = buf.writeUInt32BE(length, o + 29)
    if (prefix !== undefined) o += prefix.copy(buf, o)
    o += payload.copy(buf, o)
    if (computed) {
      it.digest = crc(buf.subarray(at + ADD_SIGNED, o))
      buf.writeUInt32BE(it.digest, at + 1)
    }
  }
  return buf
}

// ---- LAC_HINTS -------------------------------------------------------------------------------------

/** A writer's LAC for one ledger, as a LAC_HINTS item carries it. */
export interface LacHint {
  ledgerId: bigint
  lac: bigint
}

export function encodeLacHints(items: readonly LacHint[]): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + items.length * LAC_HINT_HEAD)
  let o = writeHeader(buf, FrameKind.LAC_HINTS, items.length)
  for (const it of items) {
    writeInt64BE(buf, ids.ledgerId(it.ledgerId), o)
    writeInt64BE(buf, ids.lac(it.lac), o + 8)
    o += LAC_HINT_HEAD
  }
  return buf
}

/** The kind of the message whose first bytes are `parts` (as an envelope's parts arrive), if they hold its header. */
export function messageKind(parts: readonly Buffer[]): number | undefined {
  let skip = 3 // magic:u16 version:u8, then kind:u8
  for (const p of parts) {
    if (skip < p.length) return p[skip]
    skip -= p.length
  }
  return undefined
}

// ---- ADD_RESULTS -----------------------------------------------------------------------------------

/** The error part of a refused add, bounded to MAX_ERROR_BYTES (the detail goes first, then the message is cut). */
function errorBlob(err: LogError): Buffer {
  const json = (e: {code: string; message: string; detail: Record<string, unknown>}): Buffer => Buffer.from(jsonStringify(e))
  let b = json({code: err.code, message: err.message, detail: err.detail})
  if (b.length > MAX_ERROR_BYTES) b = json({code: err.code, message: err.message.slice(0, 1024), detail: {}})
  return b
}

export function encodeAddResults(results: readonly AddOutcome[]): Buffer {
  if (results.every(r => r === undefined)) {
    // All stored (the usual answer): status 0 and length 0 for each, i.e. zeros after the header.
    const buf = Buffer.alloc(HEADER_BYTES + results.length * RESULT_HEAD)
    writeHeader(buf, FrameKind.ADD_RESULTS, results.length)
    return buf
  }
  const blobs = results.map(r => (r === undefined ? undefined : errorBlob(r)))
  const buf = Buffer.allocUnsafe(HEADER_BYTES + blobs.reduce((n, b) => n + RESULT_HEAD + (b?.length ?? 0), 0))
  let o = writeHeader(buf, FrameKind.ADD_RESULTS, results.length)
  for (const b of blobs) {
    o = buf.writeUInt8(b === undefined ? 0 : 1, o)
    o = buf.writeUInt32BE(b?.length ?? 0, o)
    if (b !== undefined) o += b.copy(buf, o)
  }
  return buf
}

// ---- ENTRIES ---------------------------------------------------------------------------------------

export function entriesEncodingLength(items: readonly EntryItem[]): number {
  let n = HEADER_BYTES
  for (const it of items) n += ENTRY_HEAD + it.payload.length
  return n
}

/** An ENTRIES message, in a buffer of its own or at the start of `into` (entriesEncodingLength bytes). */
export function encodeEntries(items: readonly EntryItem[], into?: Buffer): Buffer {
  const buf = into ?? Buffer.allocUnsafe(entriesEncodingLength(items))
  let o = writeHeader(buf, FrameKind.ENTRIES, items.length)
  for (const it of items) {
    const payload = checkPayload(it.payload, 'entry', it)
    buf.writeUInt32BE(checkDigest(it.digest, 'entry', it), o)
    writeInt64BE(buf, ids.ledgerId(it.ledgerId), o + 4)
    writeInt64BE(buf, ids.entryId(it.entryId), o + 12)
    writeInt64BE(buf, ids.lac(it.lac), o + 20)
    o = buf.writeUInt32BE(payload.length, o + 28)
    o += payload.copy(buf, o)
  }
  return buf
}

// ---- decoding --------------------------------------------------------------------------------------

/** How one kind's items look: head size, blob bound, and how head + blob become an item. */
interface KindSpec<T> {
  kind: FrameKind
  name: string
  headBytes: number
  /** For entries: where the span their digest covers starts in the head (it runs to the blob's end). */
  signedFrom?: number
  maxBlob: number
  /** The error for a blob over maxBlob: an entry is TOO_LARGE, anything else a broken frame. */
  oversized(len: number): LogError
  /** Check the head (flags, status…) at `at`; returns the blob length it declares. */
  blobLength(head: Buffer, at: number): number
  /** The item whose head starts at `at` in `buf`; `signed` is the span from signedFrom to the blob's end (kinds that have one). */
  build(buf: Buffer, at: number, blob: Buffer, signed: Buffer | undefined): T
}

/**
 * The ledger id and the LAC repeat from one add to the next in a batch: the bigint read for the previous
 * item is reused when the 8 bytes are the same (one allocation fewer each, on every add a bookie takes).
 */
class RepeatedInt64 {
  private hi = -1
  private lo = -1
  private value = 0n

  constructor(private readonly signed: boolean) {}

  read(b: Buffer, at: number): bigint {
    const hi = b.readUInt32BE(at)
    const lo = b.readUInt32BE(at + 4)
    if (hi !== this.hi || lo !== this.lo) {
      this.hi = hi
      this.lo = lo
      this.value = this.signed ? b.readBigInt64BE(at) : b.readBigUInt64BE(at)
    }
    return this.value
  }
}

const repeatedLedger = new RepeatedInt64(false)
const repeatedLac = new RepeatedInt64(true)

const entryTooLarge = (len: number): LogError => tooLarge(`an entry of ${len} bytes is over the wire limit of ${MAX_PAYLOAD_BYTES}`, len, MAX_PAYLOAD_BYTES)

const addSpec: KindSpec<AddItem> = {
  kind: FrameKind.ADD_BATCH,
  name: 'add batch',
  headBytes: ADD_HEAD,
  signedFrom: ADD_SIGNED,
  maxBlob: MAX_PAYLOAD_BYTES,
  oversized: entryTooLarge,
  blobLength(h, at) {
    const flags = h[at]!
    if ((flags & ~KNOWN_FLAGS) !== 0) throw badFrame(`unknown add flags 0x${flags.toString(16)}`, {flags})
    return h.readUInt32BE(at + ADD_HEAD - 4)
  },
  build(h, at, payload, signed) {
    const flags = h[at]!
    const item: AddItem = {ledgerId: repeatedLedger.read(h, at + 5), entryId: h.readBigUInt64BE(at + 13), lac: repeatedLac.read(h, at + 21), digest: h.readUInt32BE(at + 1), payload, signed}
    if ((flags & AddFlag.RECOVERY) !== 0) item.recovery = true
    if ((flags & AddFlag.COMPRESS) !== 0) item.compress = true
    return item
  },
}

const resultSpec: KindSpec<AddOutcome> = {
  kind: FrameKind.ADD_RESULTS,
  name: 'add results',
  headBytes: RESULT_HEAD,
  maxBlob: MAX_ERROR_BYTES,
  oversized: len => badFrame(`an add result carries an error of ${len} bytes (at most ${MAX_ERROR_BYTES})`),
  blobLength(h, at) {
    const status = h[at]!
    const len = h.readUInt32BE(at + 1)
    if (status > 1) throw badFrame(`unknown add status ${status}`, {status})
    if ((status === 0) !== (len === 0)) throw badFrame(`add status ${status} with an error of ${len} bytes`)
    return len
  },
  build(h, at, blob) {
    if (h[at] === 0) return undefined
    let body: unknown
    try {
      body = JSON.parse(blob.toString('utf8'))
    } catch {
      throw badFrame('an add result carries an error that is not JSON')
    }
    if (typeof body !== 'object' || body === null || typeof (body as {code?: unknown}).code !== 'string') throw badFrame('an add result carries an error without a code')
    return fromJSON(body)
  },
}

const entrySpec: KindSpec<EntryItem> = {
  kind: FrameKind.ENTRIES,
  name: 'entries',
  headBytes: ENTRY_HEAD,
  signedFrom: ENTRY_SIGNED,
  maxBlob: MAX_PAYLOAD_BYTES,
  oversized: entryTooLarge,
  blobLength: (h, at) => h.readUInt32BE(at + ENTRY_HEAD - 4),
  build: (h, at, payload, signed) => ({ledgerId: h.readBigUInt64BE(at + 4), entryId: h.readBigUInt64BE(at + 12), lac: h.readBigInt64BE(at + 20), digest: h.readUInt32BE(at), payload, signed}),
}

const lacHintSpec: KindSpec<LacHint> = {
  kind: FrameKind.LAC_HINTS,
  name: 'LAC hints',
  headBytes: LAC_HINT_HEAD,
  maxBlob: 0,
  oversized: () => badFrame('a LAC hint has no variable part'),
  blobLength: () => 0,
  build: (h, at) => ({ledgerId: h.readBigUInt64BE(at), lac: ids.lac(h.readBigInt64BE(at + 8))}),
}

export interface DecoderLimits {
  /** Largest message accepted (default DEFAULT_MAX_MESSAGE_BYTES). */
  maxBytes?: number
  /** The message's length when known in advance (content-length, a whole buffer): every length is bounded by it. */
  expectedBytes?: number
  /**
   * Join a message that arrived in several chunks into one buffer only from this size on (default 0:
   * always). Below it, items are views of the chunks they arrived in (an item split across chunks is
   * copied), and end() returns no body: one large allocation less per request, which V8 counts as external
   * memory and answers with full collections.
   */
  joinFrom?: number
}


/**
 * Incremental decoder of one message: push() the bytes as they arrive (any split, down to one byte at a
 * time), end() once they are all there. push() fails as soon as the bytes seen so far break the grammar or a
 * bound, so a server can answer a lying request before the rest of its body arrives.
 */
export class FrameDecoder<T> {
  private readonly chunks: Buffer[] = []
  /** Where each item's blob starts in the message and how long it is (its head is just before it). */
  private readonly blobStarts: number[] = []
  private readonly blobLengths: number[] = []
  private readonly limit: number
  private readonly expected: number | undefined
  private readonly joinFrom: number
  private readonly head: Buffer
  private received = 0
  private headFill = 0
  /** Bytes of the current blob still to come; -1 while reading a head. */
  private blobLeft = -1
  private count = -1
  private failed: LogError | undefined
  private ended = false

  constructor(private readonly spec: KindSpec<T>, limits: DecoderLimits = {}) {
    this.limit = limits.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.expected = limits.expectedBytes
    this.joinFrom = limits.joinFrom ?? 0
    if (this.expected !== undefined && this.expected > this.limit) {
      this.failed = tooLarge(`a ${spec.name} message of ${this.expected} bytes is over the limit of ${this.limit}`, this.expected, this.limit)
    }
    this.head = Buffer.alloc(Math.max(HEADER_BYTES, spec.headBytes))
  }

  /** Bytes accepted so far. */
  get bytes(): number {
    return this.received
  }

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed
    if (this.ended) throw new LogError(ErrorCode.INTERNAL, `push() after end() on a ${this.spec.name} decoder`)
    try {
      this.consume(chunk)
    } catch (err) {
      throw this.failWith(err)
    }
  }

  /** The decoder fails for good with `err` (anything not a LogError is a broken message). */
  private failWith(err: unknown): LogError {
    this.failed = isLogError(err) ? err : badFrame(`undecodable ${this.spec.name} message: ${(err as Error).message}`)
    return this.failed
  }

  private consume(chunk: Buffer): void {
    const total = this.received + chunk.length
    if (total > this.limit) throw tooLarge(`a ${this.spec.name} message is over the limit of ${this.limit} bytes`, total, this.limit)
    if (this.expected !== undefined && total > this.expected) throw badFrame(`the ${this.spec.name} message is longer than its declared ${this.expected} bytes`)
    let o = 0
    while (o < chunk.length) {
      if (this.blobLeft > 0) {
        const n = Math.min(this.blobLeft, chunk.length - o)
        this.blobLeft -= n
        o += n
        if (this.blobLeft === 0) this.blobLeft = -1
        continue
      }
      if (this.count >= 0 && this.blobStarts.length === this.count) {
        throw badFrame(`${chunk.length - o} stray bytes after the last of ${this.count} items`, {offset: this.received + o})
      }
      const want = this.count < 0 ? HEADER_BYTES : this.spec.headBytes
      const n = Math.min(want - this.headFill, chunk.length - o)
      chunk.copy(this.head, this.headFill, o, o + n)
      this.headFill += n
      o += n
      if (this.headFill < want) break
      this.headFill = 0
      const at = this.received + o // absolute offset just after this head
      if (this.count < 0) this.readHeader(at)
      else this.readItemHead(at)
    }
    this.chunks.push(chunk)
    this.received = total
  }

  /**
   * A count or length that does not fit: a lie about the declared length is BAD_FRAME; without a declared
   * length, the message would outgrow the cap: TOO_LARGE.
   */
  private overflow(message: string, size: number): LogError {
    if (this.expected !== undefined) return badFrame(message, {declared: this.expected})
    return tooLarge(`${message}: a ${this.spec.name} message may hold ${this.limit} bytes`, size, this.limit)
  }

  /** The most bytes this message may still hold after `at` (expected length, else the cap). */
  private room(at: number): number {
    return (this.expected ?? this.limit) - at
  }

  private readHeader(at: number): void {
    const magic = this.head.readUInt16BE(0)
    if (magic !== MAGIC) throw badFrame(`bad magic 0x${magic.toString(16)} (expected 0x${MAGIC.toString(16)})`, {magic})
    const version = this.head.readUInt8(2)
    if (version !== VERSION) throw badFrame(`unsupported frame version ${version}`, {version})
    const kind = this.head.readUInt8(3)
    if (kind !== this.spec.kind) throw badFrame(`expected a ${this.spec.name} message (kind ${this.spec.kind}), got kind ${kind}`, {kind})
    const count = this.head.readUInt32BE(4)
    const most = Math.floor(this.room(at) / this.spec.headBytes)
    if (count > most) throw this.overflow(`${count} items cannot fit in the ${this.room(at)} bytes left (at most ${most})`, at + count * this.spec.headBytes)
    this.count = count
  }

  private readItemHead(at: number): void {
    const len = this.spec.blobLength(this.head, 0)
    if (len > this.spec.maxBlob) throw this.spec.oversized(len)
    // The remaining heads need room too: a lying length is caught here, not after waiting for the bytes.
    const reserved = (this.count - this.blobStarts.length - 1) * this.spec.headBytes
    if (len > this.room(at) - reserved) throw this.overflow(`item ${this.blobStarts.length}: length ${len} is more than the message can still hold`, at + reserved + len)
    this.blobStarts.push(at)
    this.blobLengths.push(len)
    this.blobLeft = len > 0 ? len : -1
  }

  /** The items as views of the chunks (ascending positions, so one pass over the chunks). */
  private fromChunks(): T[] {
    const chunks = this.chunks
    const hb = this.spec.headBytes
    const sf = this.spec.signedFrom
    let c = 0
    let base = 0 // message offset of chunks[c]
    /** Bytes [from, to) of the message, which straddle chunks[c] and the next ones: one copy. */
    const copy = (from: number, to: number): Buffer => {
      const out = Buffer.allocUnsafe(to - from)
      let o = 0
      let k = c
      let kBase = base
      while (o < out.length) {
        const ch = chunks[k]!
        const start = from + o - kBase
        const n = Math.min(ch.length - start, out.length - o)
        ch.copy(out, o, start, start + n)
        o += n
        kBase += ch.length
        k++
      }
      return out
    }
    return this.blobStarts.map((start, i) => {
      const end = start + this.blobLengths[i]!
      const from = start - hb
      while (from >= base + chunks[c]!.length && c < chunks.length - 1) base += chunks[c++]!.length
      // Head and blob together: read in place in the chunk they arrived in (views of it, no item-sized
      // view per entry), or from one copy when they straddle two.
      let buf = chunks[c]!
      let at = from - base
      if (end - base > buf.length) {
        buf = copy(from, end)
        at = 0
      }
      const stop = at + end - from
      return this.spec.build(buf, at, buf.subarray(at + hb, stop), sf === undefined ? undefined : buf.subarray(at + sf, stop))
    })
  }

  /**
   * All bytes are in: check completeness and build the items (payloads are views of `body`). `owned` says
   * that body is a fresh concatenation owning its whole ArrayBuffer (>= 4 KiB, so not from Buffer's pool),
   * which the caller may transfer to a worker; a body that is the caller's own single chunk never is.
   */
  end(): {items: T[]; body: Buffer | undefined; owned: boolean} {
    if (this.failed) throw this.failed
    if (this.ended) throw new LogError(ErrorCode.INTERNAL, `end() called twice on a ${this.spec.name} decoder`)
    this.ended = true
    const complete = this.count >= 0 && this.blobStarts.length === this.count && this.blobLeft < 0 && this.headFill === 0
    if (!complete) {
      this.failed = badFrame(`truncated ${this.spec.name} message: ${this.received} bytes, ${Math.max(0, this.blobStarts.length)} of ${Math.max(0, this.count)} items started`, {bytes: this.received})
      throw this.failed
    }
    if (this.expected !== undefined && this.received !== this.expected) {
      this.failed = badFrame(`the ${this.spec.name} message has ${this.received} bytes, not its declared ${this.expected}`)
      throw this.failed
    }
    const single = this.chunks.length === 1
    try {
      if (!single && this.received < this.joinFrom) {
        const items = this.fromChunks()
        this.chunks.length = 0
        return {items, body: undefined, owned: false}
      }
      const body = single ? this.chunks[0]! : Buffer.concat(this.chunks, this.received)
      const owned = !single && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
      this.chunks.length = 0
      const hb = this.spec.headBytes
      const sf = this.spec.signedFrom
      const items = this.blobStarts.map((start, i) => {
        const end = start + this.blobLengths[i]!
        return this.spec.build(body, start - hb, body.subarray(start, end), sf === undefined ? undefined : body.subarray(start - hb + sf, end))
      })
      return {items, body, owned}
    } catch (err) {
      throw this.failWith(err)
    }
  }
}

export const addBatchDecoder = (limits?: DecoderLimits): FrameDecoder<AddItem> => new FrameDecoder(addSpec, limits)
export const addResultsDecoder = (limits?: DecoderLimits): FrameDecoder<AddOutcome> => new FrameDecoder(resultSpec, limits)
export const entriesDecoder = (limits?: DecoderLimits): FrameDecoder<EntryItem> => new FrameDecoder(entrySpec, limits)

function decodeWhole<T>(spec: KindSpec<T>, body: Buffer | readonly Buffer[], maxBytes?: number): T[] {
  const chunks = Buffer.isBuffer(body) ? [body] : body
  let size = 0
  for (const c of chunks) size += c.length
  const d = new FrameDecoder(spec, {maxBytes: maxBytes ?? Math.max(size, HEADER_BYTES), expectedBytes: size})
  for (const c of chunks) d.push(c)
  return d.end().items
}

/**
 * One-shot decoders of a whole message, in one buffer or in the chunks it arrived in (payloads are views
 * of them; an item split across two chunks is copied).
 */
export const decodeAddBatch = (body: Buffer | readonly Buffer[], maxBytes?: number): AddItem[] => decodeWhole(addSpec, body, maxBytes)
export const decodeAddResults = (body: Buffer | readonly Buffer[], maxBytes?: number): AddOutcome[] => decodeWhole(resultSpec, body, maxBytes)
export const decodeEntries = (body: Buffer | readonly Buffer[], maxBytes?: number): EntryItem[] => decodeWhole(entrySpec, body, maxBytes)
export const decodeLacHints = (body: Buffer | readonly Buffer[], maxBytes?: number): LacHint[] => decodeWhole(lacHintSpec, body, maxBytes)

/** JSON with bigints as decimal strings (ids in error details and replies). */
export function jsonStringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
}
