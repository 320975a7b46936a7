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
 * Written to index.ckpt.tmp (with O_DIRECT, paced: writeCheckpoint), fsynced, renamed over index.ckpt,
 * directory fsynced. A checkpoint that fails
 * its CRC is ignored (and reported): segments are never removed in a way that a full replay can't
 * reconstruct (compaction copies FENCE and DELETE records forward), so a checkpoint is only ever a
 * shortcut, never the only copy of anything.
 */
import {constants, existsSync, readFileSync} from 'node:fs'
import {open, rename, type FileHandle} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {join} from 'node:path'
import {crc} from '../checksum.js'
import {ErrorCode, LogError} from '../errors.js'
import {AlignedBuffer, BLOCK} from './aligned.js'
import {INDEX_COLUMNS, LedgerIndex} from './ledger-index.js'
import type {EngineState} from './state.js'

const MAGIC = Buffer.from('LOGCTLCK', 'latin1')
export const CHECKPOINT_VERSION = 1
export const CHECKPOINT_FILE = 'index.ckpt'

export interface CheckpointPosition {
  segmentId: number
  offset: number
  lastSeq: bigint
}

/** A checkpoint ready to write: its bytes as pieces, in file order, without the CRC that ends the file. */
export interface EncodedCheckpoint {
  pieces: Uint8Array[]
  /** File size, CRC included. */
  bytes: number
  /** The index's own arrays back the big pieces (copy on write until then): call once written. */
  release: () => void
}

/** Columns at least this large are written from the index's arrays; smaller bytes are copied into pieces. */
const VIEW_BYTES = 64 * 1024

/**
 * Snapshot the state for a checkpoint. This runs on the main thread, between two adds (the snapshot must be
 * of one moment), so it copies only headers and small columns; the big columns are views of the index's
 * arrays, kept unchanged by copy on write (LedgerIndex.snapshot) until writeCheckpoint has written them.
 * Copying them took ~13 ms per million entries here (page faults of a fresh 24 MB buffer, the copy, a CRC
 * of the whole), a pause every add waited for.
 */
export function encodeCheckpoint(state: EngineState, pos: CheckpointPosition): EncodedCheckpoint {
  const pieces: Uint8Array[] = []
  const shared: LedgerIndex[] = []
  let bytes = 4
  let scratch = Buffer.allocUnsafe(0)
  let used = 0
  const flush = (): void => {
    if (used > 0) pieces.push(scratch.subarray(0, used))
    scratch = Buffer.allocUnsafe(0)
    used = 0
  }
  /** Room for n more bytes in the scratch buffer; returns the offset to write them at. */
  const room = (n: number): number => {
    if (used + n > scratch.length) {
      flush()
      scratch = Buffer.allocUnsafe(Math.max(n, VIEW_BYTES))
    }
    const at = used
    used += n
    bytes += n
    return at
  }
  let o = room(8 + 8 + 24 + 16)
  const b = scratch
  MAGIC.copy(b, o); o += 8
  b.writeUInt32LE(CHECKPOINT_VERSION, o)
  b.writeUInt32LE(0, o + 4)
  o += 8
  b.writeBigUInt64LE(BigInt(pos.segmentId), o); o += 8
  b.writeBigUInt64LE(BigInt(pos.offset), o); o += 8
  b.writeBigUInt64LE(pos.lastSeq, o); o += 8
  b.writeUInt32LE(state.segments.size, o)
  b.writeUInt32LE(state.tombstones.size, o + 4)
  b.writeUInt32LE(state.ledgers.size, o + 8)
  b.writeUInt32LE(0, o + 12)
  for (const [id, s] of state.segments) {
    const at = room(24)
    scratch.writeBigUInt64LE(BigInt(id), at)
    scratch.writeBigUInt64LE(BigInt(s.end), at + 8)
    scratch.writeBigUInt64LE(s.sealed ? 1n : 0n, at + 16)
  }
  for (const id of state.tombstones) {
    const at = room(8) // before naming `scratch`: room() may replace it
    scratch.writeBigUInt64LE(id, at)
  }
  for (const [id, l] of state.ledgers) {
    const at = room(32)
    scratch.writeBigUInt64LE(id, at)
    scratch.writeUInt32LE(l.fenced ? 1 : 0, at + 8)
    scratch.writeUInt32LE(l.size, at + 12)
    scratch.writeDoubleLE(l.lac, at + 16)
    scratch.writeDoubleLE(l.payloadBytes, at + 24)
    const big = l.size * 8 >= VIEW_BYTES
    const chunks = big ? l.snapshot() : l.columns()
    if (big) shared.push(l)
    // Each column whole (its chunks in order), then the next column: the file's layout.
    for (const col of INDEX_COLUMNS.flatMap(name => chunks.map(c => c[name]))) {
      const view = new Uint8Array(col.buffer, col.byteOffset, col.byteLength)
      if (view.length >= VIEW_BYTES) {
        flush()
        pieces.push(view)
        bytes += view.length
      } else {
        const at = room(view.length)
        scratch.set(view, at)
      }
    }
  }
  flush()
  return {pieces, bytes, release: () => { for (const l of shared) l.release() }}
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

/**
 * Bytes written (and CRC'd) per step by writeCheckpoint: no long pause of the main thread for the CRC, and
 * no long write holding the device. A multiple of BLOCK (O_DIRECT).
 */
const WRITE_CHUNK = 1024 * 1024
/** Synced every this many bytes (and at the end): a checkpoint's syncs never hold a long write's worth of data. */
const SYNC_BYTES = 8 * 1024 * 1024
/**
 * Default pace of a checkpoint's writes, bytes a second. A checkpoint of a large index is tens of MB (24
 * bytes an entry), and every bookie of an ensemble reaches its threshold at about the same moment (they
 * journal the same entries): written at full speed, 3 x 125 MB went to the one disk within a second and
 * every journal sync waited behind it (docs/BENCHMARKS.md, sixth session). At this pace a checkpoint still
 * ends long before the next is due (CHECKPOINT_RATIO times its size of journal later).
 */
export const CHECKPOINT_BYTES_PER_SEC = 32 * 1024 * 1024

export interface CheckpointWriteOptions {
  /** Write with O_DIRECT where the file system allows it (as the journal; journal-worker.ts says why). */
  directIo: boolean
  /** Bytes a second to write at, asked before each step (0 = as fast as the disk takes them). */
  pace: () => number
}

/**
 * Write an encoded checkpoint to a temporary file through a page-aligned staging buffer, its CRC computed
 * step by step and appended last, synced as it goes, paced; rename it over the previous checkpoint and sync
 * the directory (all off the main thread but the copies and CRC of 1 MiB steps); then release the snapshot
 * (also when the write fails).
 */
export async function writeCheckpoint(dir: string, enc: EncodedCheckpoint, o: CheckpointWriteOptions): Promise<void> {
  const tmp = join(dir, `${CHECKPOINT_FILE}.tmp`)
  try {
    const fh = await open(tmp, 'w')
    let direct: FileHandle | undefined
    if (o.directIo && constants.O_DIRECT !== undefined) {
      try {
        direct = await open(tmp, constants.O_WRONLY | constants.O_DIRECT)
      } catch {
        // EINVAL: no O_DIRECT on this file system; the buffered handle writes everything.
      }
    }
    try {
      const buf = new AlignedBuffer().of(WRITE_CHUNK)
      const started = performance.now()
      let c = 0
      let pos = 0
      let used = 0
      let unsynced = 0
      /** Write the staged bytes at `pos` (whole blocks with O_DIRECT; the last, partial step buffered). */
      const flush = async (): Promise<void> => {
        if (direct !== undefined && used % BLOCK === 0) {
          try {
            await writeAll(direct, buf, used, pos)
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
            await direct.close().catch(() => undefined)
            direct = undefined
            await writeAll(fh, buf, used, pos)
          }
        } else {
          await writeAll(fh, buf, used, pos)
        }
        pos += used
        unsynced += used
        used = 0
        if (unsynced >= SYNC_BYTES) {
          await fh.datasync()
          unsynced = 0
        }
        const rate = o.pace()
        const wait = rate > 0 ? (pos / rate) * 1000 - (performance.now() - started) : 0
        if (wait >= 1) await sleep(wait)
      }
      const stage = async (p: Uint8Array, checked: boolean): Promise<void> => {
        for (let off = 0; off < p.length;) {
          const n = Math.min(WRITE_CHUNK - used, p.length - off)
          const part = p.subarray(off, off + n)
          if (checked) c = crc(part, c)
          buf.set(part, used)
          used += n
          off += n
          if (used === WRITE_CHUNK) await flush()
        }
      }
      for (const p of enc.pieces) await stage(p, true)
      const tail = Buffer.allocUnsafe(4)
      tail.writeUInt32LE(c >>> 0, 0)
      await stage(tail, false)
      if (used > 0) await flush()
      await fh.datasync()
    } finally {
      await direct?.close().catch(() => undefined)
      await fh.close()
    }
  } finally {
    enc.release()
  }
  await rename(tmp, join(dir, CHECKPOINT_FILE))
  // The directory's fsync on the thread pool: a synchronous one stalled the bookie's event loop for as long
  // as the file system took to commit (ms under load).
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  for (let off = 0; off < length;) {
    const {bytesWritten} = await fh.write(buf, off, length - off, position + off)
    off += bytesWritten
  }
}
