/**
 * Index checkpoints: a snapshot of EngineState plus the journal position it covers, so that a restart
 * replays only the records written after it. Layout (little-endian; typed-array columns are copied as is,
 * so a checkpoint is only read on a little-endian host, which Node's supported platforms all are):
 *
 *   magic "LOGCTLCK" | version u32 | reserved u32
 *   segmentId u64 | offset u64 | lastSeq u64                       position covered, batch number before it
 *   nSegments u32 | nTombstones u32 | nLedgers u32 | reserved u32
 *   nSegments x (id u64, end u64, sealed u64)
 *   nTombstones x ledgerId u64
 *   nLedgers x (ledgerId u64 | flags u32 (bit 0 fenced) | n u32 | lac f64 | payloadBytes f64 |
 *               ids f64[n] | seg u32[n] | off u32[n] | len u32[n] | dig u32[n])
 *   crc32c u32 of everything before
 *
 * Written to index.ckpt.tmp, fsynced, renamed over index.ckpt, directory fsynced. A checkpoint that fails
 * its CRC is ignored (and reported): segments are never removed in a way that a full replay can't
 * reconstruct (compaction copies FENCE and DELETE records forward), so a checkpoint is only ever a
 * shortcut, never the only copy of anything.
 */
import {closeSync, existsSync, fsyncSync, openSync, readFileSync} from 'node:fs'
import {open, rename} from 'node:fs/promises'
import {join} from 'node:path'
import {crc} from '../checksum.js'
import {ErrorCode, LogError} from '../errors.js'
import {LedgerIndex} from './ledger-index.js'
import type {EngineState} from './state.js'

const MAGIC = Buffer.from('LOGCTLCK', 'latin1')
export const CHECKPOINT_VERSION = 1
export const CHECKPOINT_FILE = 'index.ckpt'

export interface CheckpointPosition {
  segmentId: number
  offset: number
  lastSeq: bigint
}

export function encodeCheckpoint(state: EngineState, pos: CheckpointPosition): Buffer {
  let size = 8 + 8 + 24 + 16 + state.segments.size * 24 + state.tombstones.size * 8 + 4
  for (const l of state.ledgers.values()) size += 32 + l.size * 24
  const b = Buffer.alloc(size)
  let o = 0
  MAGIC.copy(b, o); o += 8
  b.writeUInt32LE(CHECKPOINT_VERSION, o); o += 8
  b.writeBigUInt64LE(BigInt(pos.segmentId), o); o += 8
  b.writeBigUInt64LE(BigInt(pos.offset), o); o += 8
  b.writeBigUInt64LE(pos.lastSeq, o); o += 8
  b.writeUInt32LE(state.segments.size, o)
  b.writeUInt32LE(state.tombstones.size, o + 4)
  b.writeUInt32LE(state.ledgers.size, o + 8)
  o += 16
  for (const [id, s] of state.segments) {
    b.writeBigUInt64LE(BigInt(id), o)
    b.writeBigUInt64LE(BigInt(s.end), o + 8)
    b.writeBigUInt64LE(s.sealed ? 1n : 0n, o + 16)
    o += 24
  }
  for (const id of state.tombstones) {
    b.writeBigUInt64LE(id, o)
    o += 8
  }
  for (const [id, l] of state.ledgers) {
    b.writeBigUInt64LE(id, o)
    b.writeUInt32LE(l.fenced ? 1 : 0, o + 8)
    b.writeUInt32LE(l.size, o + 12)
    b.writeDoubleLE(l.lac, o + 16)
    b.writeDoubleLE(l.payloadBytes, o + 24)
    o += 32
    const c = l.columns()
    for (const col of [c.ids, c.seg, c.off, c.len, c.dig]) {
      b.set(new Uint8Array(col.buffer, col.byteOffset, col.byteLength), o)
      o += col.byteLength
    }
  }
  b.writeUInt32LE(crc(b.subarray(0, size - 4)), size - 4)
  return b
}

export function decodeCheckpoint(b: Buffer, state: EngineState, file: string): CheckpointPosition {
  const bad = (why: string): LogError => new LogError(ErrorCode.CORRUPT, `${file}: ${why}`, {detail: {file}})
  if (b.length < 60 || !b.subarray(0, 8).equals(MAGIC)) throw bad('not a logctl checkpoint')
  if (b.readUInt32LE(b.length - 4) !== crc(b.subarray(0, b.length - 4))) throw bad('checkpoint checksum mismatch')
  const version = b.readUInt32LE(8)
  if (version !== CHECKPOINT_VERSION) throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `${file}: checkpoint version ${version} is not ${CHECKPOINT_VERSION}`, {detail: {file, version}})
  let o = 16
  const pos = {segmentId: Number(b.readBigUInt64LE(o)), offset: Number(b.readBigUInt64LE(o + 8)), lastSeq: b.readBigUInt64LE(o + 16)}
  o += 24
  const nSeg = b.readUInt32LE(o)
  const nTomb = b.readUInt32LE(o + 4)
  const nLedgers = b.readUInt32LE(o + 8)
  o += 16
  const need = (n: number): void => {
    if (o + n > b.length - 4) throw bad('checkpoint is shorter than its counts say')
  }
  need(nSeg * 24 + nTomb * 8)
  for (let i = 0; i < nSeg; i++) {
    state.segments.set(Number(b.readBigUInt64LE(o)), {end: Number(b.readBigUInt64LE(o + 8)), live: 0, sealed: b.readBigUInt64LE(o + 16) === 1n})
    o += 24
  }
  for (let i = 0; i < nTomb; i++) {
    state.tombstones.add(b.readBigUInt64LE(o))
    o += 8
  }
  for (let i = 0; i < nLedgers; i++) {
    need(32)
    const id = b.readBigUInt64LE(o)
    const fenced = (b.readUInt32LE(o + 8) & 1) === 1
    const n = b.readUInt32LE(o + 12)
    const lac = b.readDoubleLE(o + 16)
    const payloadBytes = b.readDoubleLE(o + 24)
    o += 32
    need(n * 24)
    // Copy into fresh, aligned arrays (the file buffer's offsets are not aligned for Float64Array).
    const col = <T>(bytes: number, make: (ab: ArrayBuffer) => T): T => {
      const ab = new ArrayBuffer(bytes)
      new Uint8Array(ab).set(b.subarray(o, o + bytes))
      o += bytes
      return make(ab)
    }
    const ids = col(n * 8, ab => new Float64Array(ab))
    const seg = col(n * 4, ab => new Uint32Array(ab))
    const off = col(n * 4, ab => new Uint32Array(ab))
    const len = col(n * 4, ab => new Uint32Array(ab))
    const dig = col(n * 4, ab => new Uint32Array(ab))
    const l = LedgerIndex.fromColumns({ids, seg, off, len, dig})
    l.fenced = fenced
    l.lac = lac
    l.payloadBytes = payloadBytes
    state.ledgers.set(id, l)
  }
  state.recountLive()
  return pos
}

export function readCheckpoint(dir: string, state: EngineState): CheckpointPosition | undefined {
  const file = join(dir, CHECKPOINT_FILE)
  if (!existsSync(file)) return undefined
  return decodeCheckpoint(readFileSync(file), state, file)
}

export async function writeCheckpoint(dir: string, data: Buffer): Promise<void> {
  const tmp = join(dir, `${CHECKPOINT_FILE}.tmp`)
  const fh = await open(tmp, 'w')
  try {
    await fh.write(data, 0, data.length, 0)
    await fh.datasync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, CHECKPOINT_FILE))
  const dfd = openSync(dir, 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
}
