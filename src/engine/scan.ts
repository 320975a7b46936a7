/**
 * Sequential scanner over one segment file, shared by restart replay, `logctl storage verify` and
 * `logctl storage dump`. It reads the file through a sliding window (never the whole file at once) and
 * yields valid records and bad regions; what a bad region means is the caller's decision (docs/FORMAT.md):
 *
 *   - a record is valid when its header CRC holds, its lengths are in bounds, its batch number does not go
 *     backwards and (for entries) its payload matches the end-to-end digest;
 *   - zeros where a record should start mean the end of the written data (the preallocated tail);
 *   - after an invalid record the scanner searches forward (8-byte steps) for the next valid record and
 *     reports the region in between as bad, with `trailing` true when nothing valid follows and the
 *     highest batch number seen after it otherwise. Callers tell a torn tail (the last, unacknowledged
 *     batch of the active segment) from corruption in the middle with these two facts.
 */
import {closeSync, fstatSync, openSync, readSync} from 'node:fs'
import {checkRecordHeader, decodeSegmentHeader, RecordType, SEGMENT_HEADER_BYTES, storedLength, align8, type RecordHeader} from './format.js'
import {preadFully} from './pio.js'
import {storedPayloadValid} from './codec.js'

export type ScanItem =
  | {kind: 'record'; offset: number; length: number; header: RecordHeader; stored: Buffer}
  | {kind: 'bad'; offset: number; end: number; reason: string; trailing: boolean; nextSeq: bigint | undefined}
  | {kind: 'end'; offset: number}

const WINDOW = 8 * 1024 * 1024

class Window {
  private buf = Buffer.alloc(0)
  private start = 0
  constructor(private readonly fd: number, readonly size: number) {}

  /** Bytes [pos, pos+len) clipped to the file; the returned buffer is valid until the next call. */
  get(pos: number, len: number): Buffer {
    const want = Math.min(len, this.size - pos)
    if (want <= 0) return Buffer.alloc(0)
    if (pos < this.start || pos + want > this.start + this.buf.length) {
      const n = Math.min(Math.max(WINDOW, want), this.size - pos)
      if (this.buf.length < n) this.buf = Buffer.allocUnsafe(n)
      this.buf = this.buf.subarray(0, preadFully(this.fd, this.buf, 0, n, pos))
      this.start = pos
    }
    return this.buf.subarray(pos - this.start, pos - this.start + want)
  }
}

type Probe = {valid: true; header: RecordHeader; length: number; stored: Buffer} | {valid: false; end: boolean; reason: string}

function probe(w: Window, pos: number, minSeq: bigint): Probe {
  const head = w.get(pos, 64)
  if (head.length < 8) return {valid: false, end: true, reason: 'end of file'}
  const c = checkRecordHeader(head, 0)
  if (!c.ok) return c.end ? {valid: false, end: true, reason: 'zeros'} : {valid: false, end: false, reason: c.reason}
  const h = c.header
  const length = align8(8 + h.bodyLen)
  if (pos + length > w.size) return {valid: false, end: false, reason: 'record runs past the end of the file'}
  if (h.batchSeq < minSeq) return {valid: false, end: false, reason: `batch number ${h.batchSeq} goes backwards (after ${minSeq})`}
  const stored = Buffer.from(w.get(pos + 56, storedLength(h)))
  if (h.type === RecordType.ENTRY && !storedPayloadValid(h, stored)) return {valid: false, end: false, reason: 'payload digest mismatch'}
  return {valid: true, header: h, length, stored}
}

/** Is [pos, pos+8) all zeros? Used to skip the preallocated tail quickly while searching. */
function zeroWord(w: Window, pos: number): boolean {
  const b = w.get(pos, 8)
  return b.length === 8 && b.readBigUInt64LE(0) === 0n
}

/** Offset of the first non-zero byte at or after `from` (-1 if none). */
function firstNonZero(w: Window, from: number): number {
  for (let pos = from; pos < w.size; pos += 1024 * 1024) {
    const b = w.get(pos, 1024 * 1024)
    const i = b.findIndex(x => x !== 0)
    if (i >= 0) return pos + i
  }
  return -1
}

/** End of the last non-zero byte at or after `from`. */
function lastNonZeroEnd(w: Window, from: number): number {
  let end = from
  for (let pos = from; pos < w.size; pos += 1024 * 1024) {
    const b = w.get(pos, 1024 * 1024)
    for (let i = b.length - 1; i >= 0; i--) {
      if (b[i] !== 0) {
        end = pos + i + 1
        break
      }
    }
  }
  return end
}

export interface ScanOptions {
  /** Start here instead of just after the segment header. */
  from?: number
  /** The batch number of the last record before `from` (records may not go below it). */
  minSeq?: bigint
}

/** Read and check just the segment header (throws CORRUPT / BAD_FORMAT_VERSION). */
export function readSegmentHeader(path: string): {segmentId: number; createdAt: number} {
  const fd = openSync(path, 'r')
  try {
    const b = Buffer.alloc(SEGMENT_HEADER_BYTES)
    readSync(fd, b, 0, b.length, 0)
    return decodeSegmentHeader(b, path)
  } finally {
    closeSync(fd)
  }
}

export function* scanSegment(path: string, opts: ScanOptions = {}): Generator<ScanItem> {
  const fd = openSync(path, 'r')
  try {
    const w = new Window(fd, fstatSync(fd).size)
    decodeSegmentHeader(w.get(0, SEGMENT_HEADER_BYTES), path)
    let pos = opts.from ?? SEGMENT_HEADER_BYTES
    let minSeq = opts.minSeq ?? 0n
    while (pos < w.size) {
      const p = probe(w, pos, minSeq)
      if (p.valid) {
        yield {kind: 'record', offset: pos, length: p.length, header: p.header, stored: p.stored}
        minSeq = p.header.batchSeq
        pos += p.length
        continue
      }
      if (p.end) {
        // Zeros: the records end here. Anything non-zero further on (junk, or a write that landed past a
        // hole) is reported as a trailing bad region, so that verify sees the whole file.
        const junk = firstNonZero(w, pos)
        if (junk >= 0) {
          yield {kind: 'bad', offset: junk, end: lastNonZeroEnd(w, junk), reason: 'non-zero data after the end of the records', trailing: true, nextSeq: undefined}
          return
        }
        break
      }
      // Search forward for the next valid record; remember where the non-zero data ended.
      let next = pos + 8
      let lastNonZero = pos + 8
      let found: Extract<Probe, {valid: true}> | undefined
      while (next + 8 <= w.size) {
        if (zeroWord(w, next)) {
          next += 8
          continue
        }
        const q = probe(w, next, minSeq)
        if (q.valid) {
          found = q
          break
        }
        next += 8
        lastNonZero = next
      }
      if (!found) {
        // A last partial word past the 8-byte steps belongs to the region too if it holds anything.
        const tail = w.get(next, w.size - next)
        const end = tail.some(b => b !== 0) ? w.size : Math.min(lastNonZero, w.size)
        yield {kind: 'bad', offset: pos, end, reason: p.reason, trailing: true, nextSeq: undefined}
        return
      }
      yield {kind: 'bad', offset: pos, end: next, reason: p.reason, trailing: false, nextSeq: found.header.batchSeq}
      pos = next
    }
    yield {kind: 'end', offset: pos}
  } finally {
    closeSync(fd)
  }
}

