import {crc32c} from '@node-rs/crc32'
import {writeInt64BE} from './bytes.js'

/**
 * End-to-end entry digest (DESIGN.md invariant 3): CRC32C over
 *   ledgerId u64 BE | entryId u64 BE | lac i64 BE | length u32 BE | payload
 * The writer computes it, bookies verify it before storing and keep it on disk next to the payload,
 * readers verify it before returning. @node-rs/crc32 is the native (SSE4.2/PCLMUL) implementation,
 * ~6-8 GB/s here; nativeCrcLoaded() is checked at engine start so a JS fallback can never slip in.
 */
export const DIGEST_HEADER_BYTES = 28

/** Scratch space for the digest's header (filled and used synchronously, so one per thread is enough). */
const head = Buffer.alloc(DIGEST_HEADER_BYTES)
/** The ledger id and LAC in `head` now: consecutive entries mostly share them, so they are rewritten only when they change. */
let headLedger: bigint | undefined
let headLac: bigint | undefined

export function entryDigest(ledgerId: bigint, entryId: bigint, lac: bigint, payload: Uint8Array): number {
  if (ledgerId !== headLedger) {
    writeInt64BE(head, ledgerId, 0)
    headLedger = ledgerId
  }
  writeInt64BE(head, entryId, 8)
  if (lac !== headLac) {
    writeInt64BE(head, lac, 16)
    headLac = lac
  }
  head.writeUInt32BE(payload.length, 24)
  return crc32c(asBuffer(payload), crc32c(head))
}

/** What an entry's digest covers, and where a received entry may carry those bytes as they arrived. */
export interface Digested {
  ledgerId: bigint
  entryId: bigint
  lac: bigint
  payload: Uint8Array
  /**
   * The digest's input exactly as it travelled (ledgerId | entryId | lac | length | payload, contiguous in
   * one buffer, the payload being its last bytes): frames lay an entry's head out in this order, so the
   * frame decoder hands this view along and one CRC call over it checks the entry, instead of a header
   * assembled from the ids and two calls. Absent when the entry arrived split across chunks.
   */
  signed?: Uint8Array | undefined
}

/**
 * The digest of an entry as received: over its `signed` bytes when it has them and they end with its very
 * payload bytes (same memory, so no other payload can be vouched for by them), else computed from its fields.
 */
export function digestOf(e: Digested): number {
  const s = e.signed
  const p = e.payload
  if (s !== undefined && s.buffer === p.buffer && s.length === DIGEST_HEADER_BYTES + p.length && s.byteOffset + DIGEST_HEADER_BYTES === p.byteOffset) {
    return crc32c(asBuffer(s))
  }
  return entryDigest(e.ledgerId, e.entryId, e.lac, p)
}

export function crc(data: Uint8Array, initial = 0): number {
  return crc32c(asBuffer(data), initial)
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * @node-rs/crc32 has no JS fallback (it throws at import when its native binary is missing), so a wrong
 * answer here means a broken install; the engine refuses to open rather than store bad digests.
 */
export function nativeCrcLoaded(): boolean {
  return crc32c(Buffer.from('123456789')) === 0xe3069283
}
