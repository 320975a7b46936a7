/**
 * Payload codec: LZ4 (lz4-napi) per entry for ledgers that ask for it, and the digest check that every
 * read and every replay performs. Measured in ../shared/reference/limits.md §2-3: lz4-napi's async calls run
 * on the libuv pool and cost the main thread ~10-19 µs per 16-64 KiB block against 16-65 µs inline, so
 * blocks from ASYNC_LZ4_BYTES up go async and smaller ones run inline. Data that doesn't shrink by
 * MIN_RATIO is stored as is (random data: ratio 0.99), and the record's LZ4 flag says which.
 */
import {compress, compressSync, uncompress, uncompressSync} from 'lz4-napi'
import {entryDigest} from '../checksum.js'
import {ErrorCode, LogError} from '../errors.js'
import {RecordFlag, type RecordHeader} from './format.js'

export const ASYNC_LZ4_BYTES = 16 * 1024
const MIN_RATIO = 1.05

/** Returns the bytes to store and whether they are compressed. */
export async function maybeCompress(payload: Buffer): Promise<{stored: Buffer; compressed: boolean}> {
  if (payload.length < 64) return {stored: payload, compressed: false}
  const c = payload.length >= ASYNC_LZ4_BYTES ? await compress(payload) : compressSync(payload)
  return c.length * MIN_RATIO <= payload.length ? {stored: c, compressed: true} : {stored: payload, compressed: false}
}

export async function decodePayload(h: RecordHeader, stored: Buffer): Promise<Buffer> {
  if ((h.flags & RecordFlag.LZ4) === 0) return stored
  return h.payloadLen >= ASYNC_LZ4_BYTES ? uncompress(stored) : uncompressSync(stored)
}

export function decodePayloadSync(h: RecordHeader, stored: Buffer): Buffer {
  return (h.flags & RecordFlag.LZ4) === 0 ? stored : uncompressSync(stored)
}

/** True when the (uncompressed) payload matches the header's length and end-to-end digest. */
export function payloadMatches(h: RecordHeader, payload: Buffer): boolean {
  return payload.length === h.payloadLen && entryDigest(h.ledgerId, h.entryId, h.lac, payload) === h.digest
}

/** Decode and check synchronously (replay, verify); false on any mismatch or undecodable LZ4 data. */
export function storedPayloadValid(h: RecordHeader, stored: Buffer): boolean {
  try {
    return payloadMatches(h, decodePayloadSync(h, stored))
  } catch {
    return false
  }
}

export function checksumError(what: string, detail: Record<string, unknown>): LogError {
  return new LogError(ErrorCode.BAD_CHECKSUM, `${what}: entry digest mismatch (corrupt data)`, {detail})
}
