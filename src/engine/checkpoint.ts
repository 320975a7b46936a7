/**
 * Index checkpoints: a snapshot of EngineState plus the journal position it covers, so that a restart
 * replays only the records written after it. The manifest, index.ckpt (little-endian; typed-array columns
 * are copied as is, so a checkpoint is only read on a little-endian host, which Node's supported platforms
 * all are):
 *
 *   magic "LOGCTLCK" | version u32 | reserved u32
 *   segmentId u64 | offset u64 | lastSeq u64                       position covered, batch number before it
 *   nSegments u32 | nTombstones u32 | nLedgers u32 | reserved u32
 *   nSegments x (id u64, end u64, sealed u64)
 *   nTombstones x ledgerId u64
 *   nLedgers x (ledgerId u64 | flags u32 (bit 0 fenced, bit 1 columns in piece files) | n u32 | lac f64 |
 *               payloadBytes f64 | then either the columns ids f64[n] | seg u32[n] | off u32[n] | len u32[n] |
 *               dig u32[n], or (bit 1) nPieces u32 | reserved u32 | nPieces x (piece u64 | entries u32 |
 *               crc32c u32 of the piece file))
 *   crc32c u32 of everything before
 *
 * Version 2 (version 1 had no bit 1 and is still read). A ledger whose columns are PIECE_BYTES or more keeps
 * them in piece files, one per chunk of its index (LedgerIndex: at most 64 Ki entries, 1.5 MB), each
 * index/<ledgerId>-<piece>.idx (that chunk's five columns, nothing else), written once and named again by
 * every later manifest until that chunk changes. Appends change only a ledger's last chunk, so a checkpoint
 * writes the manifest and the chunks that changed since the last one, not the whole index (a bookie holding
 * 5 million entries rewrote 125 MB at every checkpoint, the journal syncs of all three bookies of an
 * ensemble waiting behind them: docs/BENCHMARKS.md, eighth session). Pieces are written and synced first,
 * then the manifest (to index.ckpt.tmp, with O_DIRECT, paced: writeCheckpoint), fsynced, renamed over
 * index.ckpt, directory fsynced; then pieces no manifest names any more are removed. A checkpoint that
 * fails its CRC, or names a piece that is missing or fails its CRC, is ignored (and reported): segments
 * are never removed in a way that a full replay can't reconstruct (compaction copies FENCE and DELETE
 * records forward), so a checkpoint is only ever a shortcut, never the only copy of anything.
 */
import {constants, existsSync, readFileSync} from 'node:fs'
import {mkdir, open, readdir, rename, unlink, type FileHandle} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {join} from 'node:path'
import {crc} from '../checksum.js'
import {ErrorCode, LogError} from '../errors.js'
import {AlignedBuffer, BLOCK} from './aligned.js'
import {INDEX_COLUMNS, LedgerIndex, type IndexColumns, type SavedPiece} from './ledger-index.js'
import type {EngineState} from './state.js'

const MAGIC = Buffer.from('LOGCTLCK', 'latin1')
export const CHECKPOINT_VERSION = 2
export const CHECKPOINT_FILE = 'index.ckpt'
/** Where piece files live, under the data directory. */
export const PIECE_DIR = 'index'
const FENCED = 1
const IN_PIECE = 2
/** Columns of at least this many bytes (~2,700 entries) go to piece files; smaller ones stay in the manifest. */
export const PIECE_BYTES = 64 * 1024

export function pieceFileName(ledgerId: bigint, piece: number): string {
  return `${String(ledgerId).padStart(20, '0')}-${String(piece).padStart(20, '0')}.idx`
}

export interface CheckpointPosition {
  segmentId: number
  offset: number
  lastSeq: bigint
}

/** A piece file to write before the manifest: one chunk of a ledger's index, views of its snapshot. */
export interface PieceFile {
  name: string
  parts: Uint8Array[]
  bytes: number
  /** Where the manifest holds this piece's CRC (patched in once the piece is written). */
  crcAt: {buf: Buffer; offset: number}
}

/** A checkpoint ready to write: the manifest's bytes in parts, in file order, without its CRC, and the piece files to write first. */
export interface EncodedCheckpoint {
  manifest: Uint8Array[]
  /** Manifest size, CRC included. */
  bytes: number
  /** Piece files this checkpoint writes (chunks that changed since their last piece, or have none). */
  files: PieceFile[]
  /** Bytes this checkpoint writes: the manifest and its new piece files. */
  written: number
  /** Every piece file the manifest names (written now or kept from earlier checkpoints). */
  referenced: Set<string>
  /** The index's own arrays back the piece files (copy on write until then): call once written. */
  release: () => void
  /** Once the manifest is in place: the chunks written remember their new piece. */
  commit: () => void
}

/** Size of the buffers the manifest's small parts are copied into. */
const SCRATCH_BYTES = 64 * 1024

/**
 * Snapshot the state for a checkpoint. This runs on the main thread, between two adds (the snapshot must be
 * of one moment), so it copies only headers and small columns; the big columns are views of the index's
 * arrays, kept unchanged by copy on write (LedgerIndex.pieces) until writeCheckpoint has written them.
 * Copying them took ~13 ms per million entries here (page faults of a fresh 24 MB buffer, the copy, a CRC
 * of the whole), a pause every add waited for. A chunk whose piece file still holds it (nothing changed in it
 * since) is only named.
 */
export function encodeCheckpoint(state: EngineState, pos: CheckpointPosition): EncodedCheckpoint {
  const manifest: Uint8Array[] = []
  const shared: LedgerIndex[] = []
  const files: PieceFile[] = []
  const referenced = new Set<string>()
  const made: Array<{keep: (p: SavedPiece) => void; file: PieceFile; piece: number}> = []
  let bytes = 4
  let scratch = Buffer.allocUnsafe(0)
  let used = 0
  const flush = (): void => {
    if (used > 0) manifest.push(scratch.subarray(0, used))
    scratch = Buffer.allocUnsafe(0)
    used = 0
  }
  /** Room for n more bytes in the scratch buffer; returns the offset to write them at. */
  const room = (n: number): number => {
    if (used + n > scratch.length) {
      flush()
      scratch = Buffer.allocUnsafe(Math.max(n, SCRATCH_BYTES))
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
    const inPiece = l.size * 24 >= PIECE_BYTES
    let at = room(32)
    scratch.writeBigUInt64LE(id, at)
    scratch.writeUInt32LE((l.fenced ? FENCED : 0) | (inPiece ? IN_PIECE : 0), at + 8)
    scratch.writeUInt32LE(l.size, at + 12)
    scratch.writeDoubleLE(l.lac, at + 16)
    scratch.writeDoubleLE(l.payloadBytes, at + 24)
    if (inPiece) {
      const chunks = l.pieces()
      shared.push(l)
      at = room(8)
      scratch.writeUInt32LE(chunks.length, at)
      scratch.writeUInt32LE(0, at + 4)
      for (const c of chunks) {
        const n = c.columns.ids.length
        const piece = c.saved?.id ?? state.nextPiece++
        at = room(16)
        scratch.writeBigUInt64LE(BigInt(piece), at)
        scratch.writeUInt32LE(n, at + 8)
        scratch.writeUInt32LE(c.saved?.crc ?? 0, at + 12)
        const name = pieceFileName(id, piece)
        referenced.add(name)
        if (c.saved !== undefined) continue
        const file = {name, parts: columnsInOrder([c.columns]), bytes: n * 24, crcAt: {buf: scratch, offset: at + 12}}
        files.push(file)
        made.push({keep: c.keep, file, piece})
      }
      continue
    }
    for (const view of columnsInOrder(l.columns())) {
      const at = room(view.length)
      scratch.set(view, at)
    }
  }
  flush()
  return {
    manifest, bytes, files, referenced,
    written: bytes + files.reduce((n, f) => n + f.bytes, 0),
    release: () => { for (const l of shared) l.release() },
    commit: () => {
      for (const {keep, file, piece} of made) keep({id: piece, crc: file.crcAt.buf.readUInt32LE(file.crcAt.offset)})
    },
  }
}

/** Each column whole (its chunks in order), then the next column: the layout of the columns in a file. */
function columnsInOrder(chunks: IndexColumns[]): Uint8Array[] {
  return INDEX_COLUMNS.flatMap(name => chunks.map(c => new Uint8Array(c[name].buffer, c[name].byteOffset, c[name].byteLength)))
}

/**
 * Read a manifest into `state`; `readPiece` gives the bytes of a piece file it names (index/NAME). A piece
 * that is missing, of the wrong size or fails the CRC the manifest holds for it makes the whole checkpoint
 * CORRUPT, as a manifest failing its own CRC does.
 */
export function decodeCheckpoint(b: Buffer, state: EngineState, file: string, readPiece: (name: string) => Buffer): CheckpointPosition {
  const bad = (why: string): LogError => new LogError(ErrorCode.CORRUPT, `${file}: ${why}`, {detail: {file}})
  if (b.length < 60 || !b.subarray(0, 8).equals(MAGIC)) throw bad('not a logctl checkpoint')
  if (b.readUInt32LE(b.length - 4) !== crc(b.subarray(0, b.length - 4))) throw bad('checkpoint checksum mismatch')
  const version = b.readUInt32LE(8)
  if (version !== CHECKPOINT_VERSION && version !== 1) throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `${file}: checkpoint version ${version} is not ${CHECKPOINT_VERSION} (or 1)`, {detail: {file, version}})
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
    const flags = b.readUInt32LE(o + 8)
    const n = b.readUInt32LE(o + 12)
    const lac = b.readDoubleLE(o + 16)
    const payloadBytes = b.readDoubleLE(o + 24)
    o += 32
    let l: LedgerIndex
    if ((flags & IN_PIECE) !== 0) {
      need(8)
      const count = b.readUInt32LE(o)
      o += 8
      need(count * 16)
      const chunks: Array<{columns: IndexColumns; saved: SavedPiece}> = []
      let total = 0
      for (let k = 0; k < count; k++) {
        const saved = {id: Number(b.readBigUInt64LE(o)), crc: b.readUInt32LE(o + 12)}
        const entries = b.readUInt32LE(o + 8)
        o += 16
        const name = pieceFileName(id, saved.id)
        let src: Buffer
        try {
          src = readPiece(name)
        } catch (err) {
          throw bad(`index piece ${name} is unreadable: ${(err as Error).message}`)
        }
        if (src.length !== entries * 24) throw bad(`index piece ${name} has ${src.length} bytes, not ${entries * 24}`)
        if (crc(src) !== saved.crc) throw bad(`index piece ${name} fails its checksum`)
        chunks.push({columns: copyColumns(src, 0, entries), saved})
        total += entries
        if (saved.id >= state.nextPiece) state.nextPiece = saved.id + 1
      }
      if (total !== n) throw bad(`ledger ${id}: its pieces hold ${total} entries, not ${n}`)
      try {
        l = LedgerIndex.fromPieces(chunks)
      } catch (err) {
        throw bad(`ledger ${id}: ${(err as Error).message}`)
      }
    } else {
      need(n * 24)
      l = LedgerIndex.fromColumns(copyColumns(b, o, n))
      o += n * 24
    }
    l.fenced = (flags & FENCED) !== 0
    l.lac = lac
    l.payloadBytes = payloadBytes
    state.ledgers.set(id, l)
  }
  state.recountLive()
  return pos
}

/** n entries' columns at `at` in `src`, copied into fresh, aligned arrays (a file buffer's offsets are not aligned for Float64Array). */
function copyColumns(src: Buffer, at: number, n: number): IndexColumns {
  const col = <T>(bytes: number, make: (ab: ArrayBuffer) => T): T => {
    const ab = new ArrayBuffer(bytes)
    new Uint8Array(ab).set(src.subarray(at, at + bytes))
    at += bytes
    return make(ab)
  }
  return {
    ids: col(n * 8, ab => new Float64Array(ab)),
    seg: col(n * 4, ab => new Uint32Array(ab)),
    off: col(n * 4, ab => new Uint32Array(ab)),
    len: col(n * 4, ab => new Uint32Array(ab)),
    dig: col(n * 4, ab => new Uint32Array(ab)),
  }
}

export function readCheckpoint(dir: string, state: EngineState): CheckpointPosition | undefined {
  const file = join(dir, CHECKPOINT_FILE)
  if (!existsSync(file)) return undefined
  return decodeCheckpoint(readFileSync(file), state, file, name => readFileSync(join(dir, PIECE_DIR, name)))
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
 * Write an encoded checkpoint: its new piece files, then the manifest to a temporary file, each through a
 * page-aligned staging buffer, CRC'd step by step (the manifest's CRC appended last, the pieces' CRCs patched
 * into the manifest before it is written), synced as they go, paced as one stream of bytes; sync the piece
 * directory, rename the manifest over the previous one and sync the directory (all off the main thread but
 * the copies and CRCs of 1 MiB steps); release the snapshot (also when the write fails); once the manifest
 * is in place, remove the piece files it no longer names.
 */
export async function writeCheckpoint(dir: string, enc: EncodedCheckpoint, o: CheckpointWriteOptions): Promise<void> {
  const tmp = join(dir, `${CHECKPOINT_FILE}.tmp`)
  const pieceDir = join(dir, PIECE_DIR)
  try {
    const pacer = {started: performance.now(), written: 0}
    const buf = new AlignedBuffer().of(WRITE_CHUNK)
    if (enc.files.length > 0) {
      await mkdir(pieceDir, {recursive: true})
      for (const f of enc.files) f.crcAt.buf.writeUInt32LE(await writeSteps(join(pieceDir, f.name), f.parts, buf, o, pacer), f.crcAt.offset)
      await syncDir(pieceDir)
    }
    await writeSteps(tmp, enc.manifest, buf, o, pacer, true)
  } finally {
    enc.release()
  }
  await rename(tmp, join(dir, CHECKPOINT_FILE))
  // The directory's fsync on the thread pool: a synchronous one stalled the bookie's event loop for as long
  // as the file system took to commit (ms under load).
  await syncDir(dir)
  enc.commit()
  await removePieces(pieceDir, name => !enc.referenced.has(name))
}

/** Remove the piece files `drop` says (best effort: one left behind is removed by a later checkpoint). */
async function removePieces(pieceDir: string, drop: (name: string) => boolean): Promise<void> {
  let names: string[]
  try {
    names = await readdir(pieceDir)
  } catch {
    return
  }
  for (const name of names) if (name.endsWith('.idx') && drop(name)) await unlink(join(pieceDir, name)).catch(() => undefined)
}

async function syncDir(path: string): Promise<void> {
  const dh = await open(path, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

/**
 * Write `parts` to a new file at `path` through `buf` (page-aligned, WRITE_CHUNK bytes) in WRITE_CHUNK steps:
 * O_DIRECT where the file system allows it, the last partial step buffered; synced every SYNC_BYTES and at
 * the end; after each step, waits as long as the pace asks (pacer counts every file of the checkpoint).
 * Returns the CRC32C of the parts; with `appendCrc`, also writes it after them.
 */
async function writeSteps(path: string, parts: readonly Uint8Array[], buf: Buffer, o: CheckpointWriteOptions, pacer: {started: number; written: number}, appendCrc = false): Promise<number> {
  const fh = await open(path, 'w')
  let direct: FileHandle | undefined
  if (o.directIo && constants.O_DIRECT !== undefined) {
    try {
      direct = await open(path, constants.O_WRONLY | constants.O_DIRECT)
    } catch {
      // EINVAL: no O_DIRECT on this file system; the buffered handle writes everything.
    }
  }
  try {
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
      pacer.written += used
      unsynced += used
      used = 0
      if (unsynced >= SYNC_BYTES) {
        await fh.datasync()
        unsynced = 0
      }
      const rate = o.pace()
      const wait = rate > 0 ? (pacer.written / rate) * 1000 - (performance.now() - pacer.started) : 0
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
    for (const p of parts) await stage(p, true)
    if (appendCrc) {
      const tail = Buffer.allocUnsafe(4)
      tail.writeUInt32LE(c >>> 0, 0)
      await stage(tail, false)
    }
    if (used > 0) await flush()
    await fh.datasync()
    return c >>> 0
  } finally {
    await direct?.close().catch(() => undefined)
    await fh.close()
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  for (let off = 0; off < length;) {
    const {bytesWritten} = await fh.write(buf, off, length - off, position + off)
    off += bytesWritten
  }
}
