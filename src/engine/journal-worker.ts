/**
 * The journal worker: one long-lived thread per engine that owns the active segment file. Each 'write'
 * message is one group commit: it is written with one positional write and made durable with one
 * fdatasync before the reply goes back, so the main thread acknowledges adds only after the sync that
 * covers them. Blocking calls are fine here: this thread does nothing else, and the main thread keeps
 * serving (and forming the next batch) meanwhile.
 *
 * Preallocation: fdatasync after overwriting already-allocated, zero-filled blocks is 2-5x cheaper than
 * after an append that grows the file (no size/extent metadata to journal; measured in
 * ../shared/reference/limits.md §5, BookKeeper's journalPreAllocSizeMB does the same). When preallocBytes > 0
 * the worker zero-fills ahead of the write position in chunks of that size; the zeros also mark "no record
 * here" for recovery. The extension is written before the data, so a full disk fails the extension, never
 * half a batch, and is rolled back with ftruncate.
 *
 * Direct I/O (init.directIo, the default): batches are written with O_DIRECT, bypassing the page cache,
 * from a page-aligned staging buffer (aligned.ts). A write covers whole 4 KiB blocks: it starts at the block
 * holding the batch's first byte, so the bytes of that block before the batch (the previous batch's tail,
 * already durable) are written again, unchanged, and it ends with zeros up to the next block boundary (the
 * same "no record here" the zero-fill leaves). A sector-atomic device therefore never tears durable bytes:
 * a sector written again holds the same bytes before and after. The engine's buffered reads stay coherent
 * (the kernel drops cached pages a direct write covers; no reader maps the files), and nothing reads the
 * new batch before it is durable. Why: through the page cache every journaled byte first needs a page, and
 * on this project's machine (a nested VM with free page reporting) a page the guest has not touched lately
 * costs ~10 µs of kernel time to fault in: ~2.5 µs per KiB written, 3x a bookie's journal thread's CPU once
 * a run had grown the cache past what was warm (docs/BENCHMARKS.md, sixth session). BookKeeper drops its
 * journal's pages from the cache for the same reason (journalRemoveFromPageCache). A file system that
 * refuses O_DIRECT (EINVAL at open or at the first write, e.g. tmpfs before Linux 6.6) gets the buffered
 * path. The zero-fill goes through O_DIRECT as well (extendTo).
 */
import {closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {parentPort, workerData} from 'node:worker_threads'
import {AlignedBuffer, alignUp, BLOCK} from './aligned.js'
import {encodeSegmentHeader, segmentFileName, SEGMENT_HEADER_BYTES} from './format.js'
import {preadFully, pwriteFully} from './pio.js'
import type {FromJournal, JournalInit, ToJournal} from './messages.js'

const init = workerData as JournalInit
const port = parentPort!

let fd = -1
/** The same file opened with O_DIRECT for batch writes (-1: buffered writes). */
let dfd = -1
let segmentId = -1
let allocated = 0
/** End of the last batch written (where the data stops and the preallocated zeros begin). */
let lastEnd = 0

function post(msg: FromJournal, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer)
}

function fsyncDir(): void {
  const dfd = openSync(join(init.dir, 'segments'), 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
}

function open(id: number, create: boolean): void {
  if (fd >= 0) {
    fdatasyncSync(fd)
    closeSync(fd)
    fd = -1
  }
  if (dfd >= 0) {
    closeSync(dfd)
    dfd = -1
  }
  tailLength = -1
  const path = join(init.dir, 'segments', segmentFileName(id))
  if (create) {
    // 'w+': a file with this id can only hold the remains of a creation that failed before anything in it
    // was acknowledged (ids only grow), so truncating it loses nothing.
    const f = openSync(path, 'w+')
    try {
      writeSync(f, encodeSegmentHeader(id), 0, SEGMENT_HEADER_BYTES, 0)
      fdatasyncSync(f)
    } catch (err) {
      closeSync(f)
      throw err
    }
    fd = f
    // The new file's directory entry must be durable before anything in it is acknowledged.
    fsyncDir()
  } else {
    fd = openSync(path, 'r+')
  }
  segmentId = id
  allocated = fstatSync(fd).size
  lastEnd = create ? SEGMENT_HEADER_BYTES : allocated
  if (init.directIo && directSupported) {
    try {
      dfd = openSync(path, constants.O_WRONLY | constants.O_DIRECT)
    } catch {
      // EINVAL: this file system has no O_DIRECT (tmpfs before Linux 6.6); buffered writes from now on.
      directSupported = false
    }
  }
}

// ---- direct I/O ----------------------------------------------------------------------------------------

let directSupported = constants.O_DIRECT !== undefined
const staging = new AlignedBuffer()
/** The bytes of the block holding lastEnd, before lastEnd, as written (-1: unknown, read them from the file). */
const tail = Buffer.alloc(BLOCK)
let tailLength = -1

/** Write `buf` at `position` with O_DIRECT, in whole blocks (see the file comment); returns the aligned end. */
function writeDirect(buf: Buffer, position: number): number {
  const start = position - (position % BLOCK)
  const head = position - start
  const end = position + buf.length
  const alignedEnd = alignUp(end)
  const length = alignedEnd - start
  const out = staging.of(length)
  if (head > 0) {
    if (tailLength === head && position === lastEnd) tail.copy(out, 0, 0, head)
    else {
      out.fill(0, preadFully(fd, out, 0, head, start), head)
    }
  }
  buf.copy(out, head)
  out.fill(0, head + buf.length, length)
  pwriteFully(dfd, out, 0, length, start)
  const lastBlock = end - (end % BLOCK)
  tailLength = end - lastBlock
  out.copy(tail, 0, lastBlock - start, lastBlock - start + tailLength)
  return alignedEnd
}

/** The file system took O_DIRECT at open but not a write (EINVAL): buffered writes from now on. */
function dropDirect(): void {
  directSupported = false
  closeSync(dfd)
  dfd = -1
  tailLength = -1
}

/**
 * 1 MiB of zeros for the zero-fill, page-aligned so that direct writes can use it too (a WebAssembly.Memory
 * starts zeroed; this one is never written).
 */
const ZERO_CHUNK = new AlignedBuffer().of(1024 * 1024)

/**
 * Zero-fill [allocated, target) in 1 MiB writes. On failure the file is cut back to where it was. With
 * direct I/O the whole blocks go through O_DIRECT too (only a partial block is buffered: a segment's first,
 * after its header, and the last of a runway whose size is not a whole number of blocks):
 * written through the cache, the zeros cost a page-cache page per 4 KiB, then their writeback in the next
 * fdatasync, then the page's eviction when the batch's direct write covers it; in a bookie's journal thread
 * under a steady load that was ~half of its CPU (perf, docs/BENCHMARKS.md seventh session).
 */
function extendTo(target: number): void {
  const before = allocated
  try {
    let pos = allocated
    while (pos < target) {
      const direct = dfd >= 0 && pos % BLOCK === 0 && target - pos >= BLOCK
      if (direct) {
        const n = Math.min(ZERO_CHUNK.length, target - pos) & ~(BLOCK - 1)
        try {
          pwriteFully(dfd, ZERO_CHUNK, 0, n, pos)
          pos += n
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
          dropDirect()
        }
      } else {
        const n = Math.min(ZERO_CHUNK.length, dfd >= 0 ? alignUp(pos + 1) - pos : target - pos, target - pos)
        pwriteFully(fd, ZERO_CHUNK, 0, n, pos)
        pos += n
      }
    }
    allocated = target
  } catch (err) {
    try {
      ftruncateSync(fd, before)
    } catch {
      // The extension failed and so did the rollback: the zeros past `before` are harmless (they read as
      // "no record"), so the original error is the one worth reporting.
    }
    throw err
  }
}

/**
 * After a batch is acknowledged, zero-fill the next chunk if less than half a chunk is left, and sync it
 * then: off the acknowledged batch's critical path (the main thread is already forming the next batch),
 * and the next data syncs find the blocks allocated. A failure here is not an error of any add: the next
 * write extends (and reports) again.
 */
function extendAhead(): void {
  if (init.preallocBytes === 0 || lastBatchLarge || fd < 0 || allocated - lastEnd >= init.preallocBytes / 2) return
  try {
    extendTo(allocated + init.preallocBytes)
    fdatasyncSync(fd)
  } catch {
    // e.g. ENOSPC: left to the next write, which then fails and turns the engine read-only.
  }
}

/**
 * Batches from this size on are appended without zero-filling ahead: their fdatasync is dominated by the
 * data, so preallocation saves little, and writing every byte twice (zeros, then data) halves what the disk
 * can take under load; the 4 MiB zero-fill also held the next batch back by ~10 ms every few batches
 * (docs/BENCHMARKS.md). Small batches (the latency-bound case) keep the zero-filled runway.
 */
export const APPEND_BATCH_BYTES = 128 * 1024
let lastBatchLarge = false

function write(msg: Extract<ToJournal, {type: 'write'}>): void {
  const buf = Buffer.from(msg.buf, 0, msg.length)
  const end = msg.position + msg.length
  let allocatedBefore = allocated
  try {
    if (msg.segmentId !== segmentId) open(msg.segmentId, true)
    allocatedBefore = allocated
    lastBatchLarge = msg.length >= APPEND_BATCH_BYTES
    let preallocMicros = 0
    if (init.preallocBytes > 0 && end > allocated && !lastBatchLarge) {
      const t = process.hrtime.bigint()
      const chunks = Math.ceil((end - allocated) / init.preallocBytes)
      extendTo(allocated + chunks * init.preallocBytes)
      preallocMicros = Number(process.hrtime.bigint() - t) / 1000
    }
    const t0 = process.hrtime.bigint()
    if (dfd >= 0) {
      try {
        // Past the allocated end (plain appends) the file is cut back to the data's end: its size stays
        // where the records stop, as with buffered appends, instead of at the block boundary.
        if (writeDirect(buf, msg.position) > allocated) ftruncateSync(fd, Math.max(end, allocated))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
        dropDirect()
      }
    }
    if (dfd < 0) {
      pwriteFully(fd, buf, 0, msg.length, msg.position)
    }
    const t1 = process.hrtime.bigint()
    fdatasyncSync(fd)
    const t2 = process.hrtime.bigint()
    if (end > allocated) allocated = end
    lastEnd = end
    post({type: 'written', seq: msg.seq, buf: msg.buf, writeMicros: Number(t1 - t0) / 1000, syncMicros: Number(t2 - t1) / 1000, preallocMicros, directIo: dfd >= 0}, [msg.buf])
    extendAhead()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    tailLength = -1
    if (fd >= 0 && msg.segmentId === segmentId && end > allocated && (init.preallocBytes === 0 || lastBatchLarge)) {
      // A failed append may have left part of the batch behind: cut it so it can never be replayed.
      try {
        ftruncateSync(fd, Math.max(msg.position, allocatedBefore))
      } catch {
        // Recovery also refuses records whose batch number goes backwards, so leftovers stay harmless.
      }
    }
    post({type: 'failed', seq: msg.seq, buf: msg.buf, errno: e.code ?? 'EIO', message: e.message, segmentId}, [msg.buf])
  }
}

port.on('message', (msg: ToJournal) => {
  switch (msg.type) {
    case 'open':
      try {
        open(msg.segmentId, msg.create)
        post({type: 'opened', segmentId: msg.segmentId, allocated, directIo: dfd >= 0})
      } catch (err) {
        const e = err as NodeJS.ErrnoException
        post({type: 'open-failed', segmentId: msg.segmentId, errno: e.code ?? 'EIO', message: e.message})
      }
      break
    case 'write':
      write(msg)
      break
    case 'close':
      if (dfd >= 0) {
        closeSync(dfd)
        dfd = -1
      }
      if (fd >= 0) {
        try {
          fdatasyncSync(fd)
        } finally {
          closeSync(fd)
          fd = -1
        }
      }
      post({type: 'closed'})
      break
  }
})
