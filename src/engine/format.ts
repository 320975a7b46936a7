/**
 * On-disk format of a bookie's data directory (docs/FORMAT.md is the prose version of this comment).
 *
 * Segment file `segments/<20-digit id>.log`:
 *   header (64 bytes): magic "LOGCTLSG" | formatVersion u32 | headerBytes u32 | segmentId u64 |
 *                      createdAt u64 (ms) | reserved (28 bytes, zero) | headerCrc u32 (CRC32C of bytes 0..60)
 *   then records, each starting at an 8-byte aligned offset:
 *     0  u32 bodyLen      bytes after the first 8 (0 = no record here: the zero-filled, preallocated tail)
 *     4  u32 headerCrc    CRC32C of bytes 0..4 and 8..56
 *     8  u8  type         1 ENTRY, 2 FENCE, 3 DELETE
 *     9  u8  flags        bit 0 RECOVERY add, bit 1 LZ4 (payload stored compressed), bit 2 COMPACTED copy
 *     10 u16 reserved     0
 *     12 u32 digest       the entry's end-to-end CRC32C (src/checksum.ts) over its *uncompressed* payload
 *     16 u64 ledgerId
 *     24 u64 entryId      0 for FENCE / DELETE
 *     32 i64 lac          the LAC the writer sent with the entry (-1 = none)
 *     40 u64 batchSeq     number of the group commit that wrote the record; never decreases in a segment
 *     48 u32 payloadLen   uncompressed payload length
 *     52 u32 reserved     0
 *     56 ...              stored payload (bodyLen - 48 bytes), then zero padding to 8-byte alignment
 * The payload is protected by the digest (checked on every read and on replay), the header by headerCrc.
 */
import {writeInt64LE, writeSafe64LE} from '../bytes.js'
import {crc} from '../checksum.js'
import {ErrorCode, LogError} from '../errors.js'

export const FORMAT_VERSION = 1
export const SEGMENT_MAGIC = Buffer.from('LOGCTLSG', 'latin1')
export const SEGMENT_HEADER_BYTES = 64
export const RECORD_HEADER_BYTES = 56
/** Hard cap of a payload (the 4 MiB) — the decoder refuses anything larger before allocating. */
export const HARD_MAX_PAYLOAD = 4 * 1024 * 1024
export const MAX_BODY_LEN = RECORD_HEADER_BYTES - 8 + HARD_MAX_PAYLOAD
export const MAX_RECORD_BYTES = align8(RECORD_HEADER_BYTES + HARD_MAX_PAYLOAD)

export const RecordType = {ENTRY: 1, FENCE: 2, DELETE: 3} as const
export type RecordType = (typeof RecordType)[keyof typeof RecordType]
export const RecordFlag = {RECOVERY: 1, LZ4: 2, COMPACTED: 4} as const

export interface RecordHeader {
  bodyLen: number
  type: RecordType
  flags: number
  digest: number
  ledgerId: bigint
  entryId: bigint
  lac: bigint
  batchSeq: bigint
  payloadLen: number
}

export function align8(n: number): number {
  return (n + 7) & ~7
}

export function recordBytes(storedLen: number): number {
  return align8(RECORD_HEADER_BYTES + storedLen)
}

export function segmentFileName(segmentId: number): string {
  return `${String(segmentId).padStart(20, '0')}.log`
}

export function parseSegmentFileName(name: string): number | undefined {
  const m = /^(\d{20})\.log$/.exec(name)
  return m ? Number(m[1]) : undefined
}

export function encodeSegmentHeader(segmentId: number, createdAt = Date.now()): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES)
  SEGMENT_MAGIC.copy(b, 0)
  b.writeUInt32BE(FORMAT_VERSION, 8)
  b.writeUInt32BE(SEGMENT_HEADER_BYTES, 12)
  b.writeBigUInt64BE(BigInt(segmentId), 16)
  b.writeBigUInt64BE(BigInt(createdAt), 24)
  b.writeUInt32BE(crc(b.subarray(0, 60)), 60)
  return b
}

export function decodeSegmentHeader(b: Buffer, file: string): {segmentId: number; createdAt: number} {
  if (b.length < SEGMENT_HEADER_BYTES || !b.subarray(0, 8).equals(SEGMENT_MAGIC)) {
    throw new LogError(ErrorCode.CORRUPT, `${file}: not a logctl segment (bad magic)`, {detail: {file, offset: 0}})
  }
  if (b.readUInt32BE(60) !== crc(b.subarray(0, 60))) {
    throw new LogError(ErrorCode.CORRUPT, `${file}: segment header checksum mismatch`, {detail: {file, offset: 0}})
  }
  const version = b.readUInt32BE(8)
  if (version !== FORMAT_VERSION) {
    throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `${file}: on-disk format version ${version}, this logctl reads version ${FORMAT_VERSION}`, {detail: {file, version}})
  }
  return {segmentId: Number(b.readBigUInt64BE(16)), createdAt: Number(b.readBigUInt64BE(24))}
}

/**
 * A whole record at `off`: header, stored payload, zero padding to 8 bytes. Returns the bytes written
 * (recordBytes of the stored length). `batchSeq` is the group commit's number.
 */
export function writeRecord(
  b: Buffer, off: number,
  r: {type: RecordType; flags: number; digest: number; ledgerId: bigint; entryId: bigint; lac: bigint; payloadLen: number; stored: Uint8Array},
  batchSeq: number,
): number {
  const stored = r.stored.length
  b.writeUInt32LE(RECORD_HEADER_BYTES - 8 + stored, off)
  b[off + 8] = r.type
  b[off + 9] = r.flags
  b[off + 10] = 0
  b[off + 11] = 0
  b.writeUInt32LE(r.digest >>> 0, off + 12)
  writeInt64LE(b, r.ledgerId, off + 16)
  writeInt64LE(b, r.entryId, off + 24)
  writeInt64LE(b, r.lac, off + 32)
  writeSafe64LE(b, batchSeq, off + 40)
  b.writeUInt32LE(r.payloadLen, off + 48)
  b.writeUInt32LE(0, off + 52)
  b.writeUInt32LE(headerCrc(b, off), off + 4)
  b.set(r.stored, off + RECORD_HEADER_BYTES)
  const end = off + RECORD_HEADER_BYTES + stored
  const len = align8(RECORD_HEADER_BYTES + stored)
  if (end < off + len) b.fill(0, end, off + len)
  return len
}

/** The header CRC's input, bytes 0..4 and 8..56 of a record, gathered here (one per thread, used at once). */
const crcInput = Buffer.alloc(RECORD_HEADER_BYTES - 4)

/**
 * CRC32C of bytes 0..4 and 8..56 of the record at `off`. A byte loop into a scratch buffer, not two
 * subarray() views: those were two Buffer objects per record, garbage on every entry a bookie takes.
 */
function headerCrc(b: Buffer, off: number): number {
  for (let i = 0; i < 4; i++) crcInput[i] = b[off + i]!
  for (let i = 8; i < RECORD_HEADER_BYTES; i++) crcInput[i - 4] = b[off + i]!
  return crc(crcInput)
}

export type HeaderCheck =
  | {ok: true; header: RecordHeader}
  | {ok: false; end: true}
  | {ok: false; end: false; reason: string}

/**
 * Decode the record header at `off`. `end` means zeros (no record written here). Every length is bounded
 * before anything is allocated from it.
 */
export function checkRecordHeader(b: Buffer, off: number): HeaderCheck {
  if (off + 8 > b.length) return {ok: false, end: false, reason: 'truncated record prefix'}
  const bodyLen = b.readUInt32LE(off)
  if (bodyLen === 0 && b.readUInt32LE(off + 4) === 0) return {ok: false, end: true}
  if (off + RECORD_HEADER_BYTES > b.length) return {ok: false, end: false, reason: 'truncated record header'}
  if (b.readUInt32LE(off + 4) !== headerCrc(b, off)) return {ok: false, end: false, reason: 'record header checksum mismatch'}
  if (bodyLen < RECORD_HEADER_BYTES - 8 || bodyLen > MAX_BODY_LEN) return {ok: false, end: false, reason: `record length ${bodyLen} out of bounds`}
  const type = b[off + 8] as RecordType
  if (type < RecordType.ENTRY || type > RecordType.DELETE) return {ok: false, end: false, reason: `unknown record type ${type}`}
  const payloadLen = b.readUInt32LE(off + 48)
  if (payloadLen > HARD_MAX_PAYLOAD) return {ok: false, end: false, reason: `payload length ${payloadLen} out of bounds`}
  return {
    ok: true,
    header: {
      bodyLen,
      type,
      flags: b[off + 9]!,
      digest: b.readUInt32LE(off + 12),
      ledgerId: b.readBigUInt64LE(off + 16),
      entryId: b.readBigUInt64LE(off + 24),
      lac: b.readBigInt64LE(off + 32),
      batchSeq: b.readBigUInt64LE(off + 40),
      payloadLen,
    },
  }
}

export function storedLength(h: RecordHeader): number {
  return h.bodyLen - (RECORD_HEADER_BYTES - 8)
}
