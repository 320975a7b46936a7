/**
 * StorageEngine: a bookie's local storage (no networking). Adds are acknowledged only once fdatasync'd
 * (group commit on the journal worker), reads come from the write cache or the segment files, fencing and
 * deletion are journaled, restart replays from the last checkpoint, a full disk turns the engine read-only
 * until space returns. Every instance owns its directory, worker and pools: several engines can live in
 * one process (the standalone cluster runs three).
 */
import {channel} from 'node:diagnostics_channel'
import {mkdirSync, statfsSync} from 'node:fs'
import {open as openFile, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {digestOf, nativeCrcLoaded} from '../checksum.js'
import {ErrorCode, LogError, asLogError} from '../errors.js'
import * as ids from '../ids.js'
import {CHECKPOINT_BYTES_PER_SEC, encodeCheckpoint, writeCheckpoint} from './checkpoint.js'
import {checksumError, decodePayload, maybeCompress, payloadMatches} from './codec.js'
import {CodecPool} from './codec-pool.js'
import {Compactor, type CompactionResult} from './compactor.js'
import {checkRecordHeader, FORMAT_VERSION, HARD_MAX_PAYLOAD, RECORD_HEADER_BYTES, RecordFlag, RecordType, recordBytes, segmentFileName, storedLength, type RecordHeader} from './format.js'
import {Journal, type JournalRecord, type JournalStats, type Location, type Placed} from './journal.js'
import {acquireLock} from './lock.js'
import {checkFormatMarker, replay, type StorageProblem} from './replay.js'
import type {LedgerIndex} from './ledger-index.js'
import type {EngineState} from './state.js'
import {WriteCache} from './write-cache.js'

export interface EngineOptions {
  dir: string
  /** Largest payload accepted (default 1 MiB, at most 4 MiB). */
  maxEntryBytes?: number
  /** Segment size at which the journal rolls to a new file (default 256 MiB, at most 1 GiB). */
  maxSegmentBytes?: number
  /** Zero-fill this far ahead of the write position (default 1 MiB; 0 = plain appends). */
  preallocBytes?: number
  /**
   * Write journal batches and checkpoints with O_DIRECT, past the page cache (default true; a file system
   * that refuses it is written through the cache). src/engine/journal-worker.ts explains and measures.
   */
  directIo?: boolean
  /** Largest group commit (default 4 MiB). */
  maxBatchBytes?: number
  /** Hold an idle flush back this long for more records (default 0: never). */
  maxWaitMicros?: number
  /**
   * Under concurrent load (records queued behind at least BUSY_SYNCS of the journal's last 32 syncs), an idle
   * flush waits up to this long for more records to join it (default 1000; 0 = never). A lone writer never
   * waits. src/engine/journal.ts explains and cites the measurements.
   */
  adaptiveWaitMicros?: number
  /** Memory for recently added entries (default 64 MiB). */
  writeCacheBytes?: number
  /**
   * Write an index checkpoint after this many journal bytes (default 256 MiB), or after CHECKPOINT_RATIO times
   * the bytes the last checkpoint wrote when that is more; bounds replay at restart. Since checkpoints are
   * incremental their cost is mostly fixed (four syncs: pieces, their directory, the manifest, the data
   * directory), so fewer of them: at 75,000 entries/s, 64 MiB (a checkpoint every ~0.9 s per bookie) gave
   * the bookies ~3 points more CPU and a follower's p99 5.3-13.7 ms against 5.2-7.9 ms (six pairs, docs/BENCHMARKS.md).
   */
  checkpointBytes?: number
  /** Pace of a checkpoint's writes, bytes a second (default 32 MiB; 0 = unpaced). src/engine/checkpoint.ts says why. */
  checkpointBytesPerSec?: number
  /** Run compaction every this many ms (default 60 s; 0 = only when compact() is called). */
  compactIntervalMs?: number
  /** Compact sealed segments whose live fraction is below this (default 0.5). */
  compactThreshold?: number
  /** While read-only, check free space this often (default 1000 ms). */
  readOnlyProbeMs?: number
  /** Free bytes needed to leave read-only mode (default preallocBytes + maxBatchBytes + 1 MiB). */
  minFreeBytes?: number
  /** Batches of at least this many payload bytes verify their digests on the codec pool (default 2 MiB, docs/BENCHMARKS.md). */
  verifyOffloadBytes?: number
  /** Codec pool threads (default 1). */
  codecThreads?: number
}

export interface AddRequest {
  ledgerId: bigint
  entryId: bigint
  /** The writer's LAC when it sent this entry (-1 = nothing confirmed yet). */
  lac: bigint
  payload: Buffer
  /** End-to-end CRC32C (src/checksum.ts entryDigest). */
  digest: number
  /** A recovery add: accepted on a fenced ledger. */
  recovery?: boolean
  /** Store the payload LZ4-compressed when that saves space (a per-ledger option of the writer). */
  compress?: boolean
  /** The digest's input as it arrived in a frame, ending with `payload` (src/checksum.ts Digested). */
  signed?: Buffer | undefined
}

export interface StoredEntry {
  ledgerId: bigint
  entryId: bigint
  lac: bigint
  payload: Buffer
  digest: number
}

export interface LedgerInfo {
  ledgerId: bigint
  fenced: boolean
  /** Highest LAC seen on this bookie (-1 = none). */
  lac: bigint
  /** Highest entry id held (-1 = none). */
  lastEntryId: bigint
  entries: number
  bytes: number
}

export interface EngineStatus {
  dir: string
  readOnly: boolean
  ledgers: number
  entries: number
  segments: number
  diskBytes: number
  liveBytes: number
  problems: number
  journal: JournalStats
  writeCache: {entries: number; bytes: number; hits: number; misses: number}
  codecOffloads: number
}

/** Diagnostics channels an operator (and the daemon's metrics) can subscribe to. */
export const channels = {
  batch: channel('logctl:journal:batch'),
  readOnly: channel('logctl:engine:read-only'),
  checkpoint: channel('logctl:engine:checkpoint'),
}

/** An add on its way to the journal: the journal record plus what the engine needs to answer it. */
interface AddRecord extends JournalRecord {
  /** Index in the addBatch call. */
  i: number
  /** entryId as a number (ids are < 2^53). */
  n: number
  /** The uncompressed payload (what the write cache keeps and readers get). */
  payload: Buffer
  /** AddRequest.signed: what its digest is checked over when present. */
  signed: Buffer | undefined
  compress: boolean
  /** Set when the add failed; undefined once durable. */
  error: LogError | undefined
}

/**
 * One addBatch call's new entries of one ledger, on their way to the journal. Kept per call, not per entry
 * (a map entry and an object per entry were among a bookie's largest allocations): a lookup scans the groups
 * in flight (a few) and searches one only when the id falls in its range, which for ascending appends
 * happens only to a retry.
 */
interface InFlight {
  recs: AddRecord[]
  min: number
  max: number
  /** Settles (never rejects) when the call that registered the group has every outcome in rec.error. */
  done: Promise<void>
}

/** An add on its way to the journal, as a read answers it. */
function fromRecord(rec: AddRecord): StoredEntry {
  return {ledgerId: rec.ledgerId, entryId: rec.entryId, lac: rec.lac, payload: rec.payload, digest: rec.digest}
}

/** The ascending union of two id lists (`held` ascending), the first `max` of it. */
function mergeIds(held: readonly number[], more: number[], max: number): number[] {
  more.sort((x, y) => x - y)
  const out: number[] = []
  let i = 0
  let j = 0
  while (out.length < max && (i < held.length || j < more.length)) {
    const a = i < held.length ? held[i]! : Infinity
    const b = j < more.length ? more[j]! : Infinity
    out.push(Math.min(a, b))
    if (a <= b) i++
    if (b <= a) j++
  }
  return out
}

/** The add of entry n among a ledger's groups on their way to the journal, with its group's `done`, if any. */
function inFlight(list: readonly InFlight[], n: number): {rec: AddRecord; done: Promise<void>} | undefined {
  for (const g of list) {
    if (n < g.min || n > g.max) continue
    for (const rec of g.recs) if (rec.n === n) return {rec, done: g.done}
  }
  return undefined
}

/** Entry n was received and has not failed (its add is on its way to the journal). */
function receivedIntact(list: readonly InFlight[] | undefined, n: number): boolean {
  const f = list === undefined ? undefined : inFlight(list, n)
  return f !== undefined && f.rec.error === undefined
}

interface LacWaiter {
  after: number
  resolve: (lac: bigint) => void
  timer: NodeJS.Timeout
}

/**
 * 1 MiB, not 4: the journal worker zero-fills (and syncs) a chunk ahead between batches, and the batch
 * queued meanwhile waits for it, the longer the larger the chunk. Under a steady small-batch load (a tail at
 * 40,000 entries/s) that wait was the writers' p99: intended -> acknowledged 26-46 ms -> 12-18 ms, follower
 * ack -> received p99 13-27 ms -> 9-13 ms (benchmarks/log.ts --bookie-engine '{"preallocBytes":N}',
 * docs/BENCHMARKS.md).
 */
export const DEFAULT_PREALLOC_BYTES = 1024 * 1024

const defaults = {
  maxEntryBytes: 1024 * 1024,
  maxSegmentBytes: 256 * 1024 * 1024,
  preallocBytes: DEFAULT_PREALLOC_BYTES,
  directIo: true,
  maxBatchBytes: 4 * 1024 * 1024,
  maxWaitMicros: 0,
  adaptiveWaitMicros: 1000,
  writeCacheBytes: 64 * 1024 * 1024,
  checkpointBytes: 256 * 1024 * 1024,
  checkpointBytesPerSec: CHECKPOINT_BYTES_PER_SEC,
  compactIntervalMs: 60_000,
  compactThreshold: 0.5,
  readOnlyProbeMs: 1000,
  verifyOffloadBytes: 2 * 1024 * 1024,
  codecThreads: 1,
}

/** Close notices (noteClosed) kept at most: a follower needs one only while it waits at a ledger's end. */
export const MAX_CLOSE_NOTICES = 10_000

/** A checkpoint is written after at least this many times its own size of journal (see checkpointEvery). */
export const CHECKPOINT_RATIO = 16

type ResolvedOptions = typeof defaults & {dir: string; minFreeBytes: number}

function resolveOptions(o: EngineOptions): ResolvedOptions {
  if (typeof o?.dir !== 'string' || o.dir === '') throw new LogError(ErrorCode.BAD_INPUT, 'engine option dir must be a directory path')
  const r = {...defaults, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))} as ResolvedOptions
  const int = (name: Exclude<keyof typeof defaults, 'directIo'>, min: number, max: number): void => {
    const v = r[name]
    if (!Number.isInteger(v) || v < min || v > max) throw new LogError(ErrorCode.BAD_INPUT, `engine option ${name} must be an integer in ${min}..${max}, got ${v}`)
  }
  int('maxEntryBytes', 1, HARD_MAX_PAYLOAD)
  int('maxSegmentBytes', 64 * 1024, 1024 * 1024 * 1024)
  int('preallocBytes', 0, 256 * 1024 * 1024)
  int('maxBatchBytes', 64 * 1024, 64 * 1024 * 1024)
  int('maxWaitMicros', 0, 1_000_000)
  int('adaptiveWaitMicros', 0, 1_000_000)
  int('writeCacheBytes', 0, 2 ** 40)
  int('checkpointBytes', 1, 2 ** 40)
  int('checkpointBytesPerSec', 0, 2 ** 40)
  int('compactIntervalMs', 0, 2 ** 31 - 1)
  int('readOnlyProbeMs', 1, 2 ** 31 - 1)
  int('verifyOffloadBytes', 0, 2 ** 40)
  int('codecThreads', 1, 64)
  if (typeof r.directIo !== 'boolean') throw new LogError(ErrorCode.BAD_INPUT, 'engine option directIo must be true or false')
  if (!(r.compactThreshold >= 0 && r.compactThreshold <= 1)) throw new LogError(ErrorCode.BAD_INPUT, 'engine option compactThreshold must be in 0..1')
  r.minFreeBytes = o.minFreeBytes ?? r.preallocBytes + r.maxBatchBytes + 1024 * 1024
  return r
}

export class StorageEngine {
  readonly dir: string
  readonly problems: StorageProblem[]
  private readonly opts: ResolvedOptions
  private readonly state: EngineState
  private readonly journal: Journal
  private readonly cache: WriteCache
  private readonly codec: CodecPool
  private readonly compactor: Compactor
  private readonly releaseLock: () => void
  /** Adds written but not yet durable, per ledger, one group per addBatch call: a repeated add joins the first. */
  private readonly pending = new Map<bigint, InFlight[]>()
  private readonly waiters = new Map<bigint, Set<LacWaiter>>()
  /** Ledgers whose writer said it closed them, with their last entry id (closeNotice), oldest first. */
  private readonly closeNotices = new Map<bigint, number>()
  private readonly readers = new Map<number, Promise<FileHandle>>()
  /** add() calls of this turn, on their way to one addBatch. */
  private coalesced: {reqs: AddRequest[]; outcome: Promise<Array<LogError | undefined>>} | undefined
  private readOnlyError: LogError | undefined
  private probeTimer: NodeJS.Timeout | undefined
  private compactTimer: NodeJS.Timeout | undefined
  private bytesSinceCheckpoint = 0
  private lastCheckpointBytes = 0
  private checkpointing: Promise<void> | undefined
  private closing: Promise<void> | undefined

  private constructor(opts: ResolvedOptions, state: EngineState, journal: Journal, problems: StorageProblem[], releaseLock: () => void) {
    this.opts = opts
    this.dir = opts.dir
    this.state = state
    this.journal = journal
    this.problems = problems
    this.releaseLock = releaseLock
    this.cache = new WriteCache(opts.writeCacheBytes)
    this.codec = new CodecPool(opts.codecThreads)
    this.compactor = new Compactor({
      dir: opts.dir,
      state,
      journal,
      threshold: opts.compactThreshold,
      checkpoint: () => this.checkpoint(),
      dropReader: id => this.dropReader(id),
    })
    if (opts.compactIntervalMs > 0) {
      this.compactTimer = setInterval(() => {
        this.compactor.run().catch(() => {
          // Compaction is best effort: a failure leaves the old segment in place and is retried next round.
        })
      }, opts.compactIntervalMs)
      this.compactTimer.unref()
    }
  }

  static async open(options: EngineOptions): Promise<StorageEngine> {
    const opts = resolveOptions(options)
    if (!nativeCrcLoaded()) throw new LogError(ErrorCode.INTERNAL, 'the native CRC32C implementation did not load')
    mkdirSync(join(opts.dir, 'segments'), {recursive: true})
    const release = acquireLock(opts.dir)
    try {
      checkFormatMarker(opts.dir, FORMAT_VERSION)
      const r = replay(opts.dir)
      const head = r.head
      if (head.create) r.state.segment(head.segmentId)
      let engine: StorageEngine | undefined
      const journal = await Journal.start(
        {dir: opts.dir, preallocBytes: opts.preallocBytes, directIo: opts.directIo, maxSegmentBytes: opts.maxSegmentBytes, maxBatchBytes: opts.maxBatchBytes, maxWaitMicros: opts.maxWaitMicros, adaptiveWaitMicros: opts.adaptiveWaitMicros},
        {
          onBatch: info => engine?.onBatch(info),
          onSealed: (id, end) => {
            const s = r.state.segment(id)
            s.sealed = true
            s.end = Math.max(s.end, end)
          },
          onFailure: err => engine?.onJournalFailure(err),
        },
        {segmentId: head.segmentId, position: head.offset, nextSeq: Number(r.lastSeq) + 1, create: head.create},
      )
      engine = new StorageEngine(opts, r.state, journal, r.problems, release)
      if (r.replayedBytes > 0) engine.bytesSinceCheckpoint = r.replayedBytes
      return engine
    } catch (err) {
      release()
      throw err
    }
  }

  // ---- adds ----------------------------------------------------------------------------------------

  private admit(ledgerId: bigint, recovery: boolean): void {
    if (this.closing) throw new LogError(ErrorCode.CLOSED, 'the storage engine is closed')
    if (this.readOnlyError) throw new LogError(ErrorCode.READ_ONLY, `the bookie is read-only: ${this.readOnlyError.message}`)
    this.refuseDeleted(ledgerId)
    if (!recovery && this.state.ledgers.get(ledgerId)?.fenced) throw new LogError(ErrorCode.FENCED, `ledger ${ledgerId} is fenced`, {detail: {ledgerId: String(ledgerId)}})
  }

  /**
   * Add one entry; resolves once it is durable. Adding the same entry again is a no-op. Adds made in the
   * same turn of the event loop (a pipelining caller) are handed to addBatch together.
   */
  add(req: AddRequest): Promise<void> {
    let c = this.coalesced
    if (!c) {
      const reqs: AddRequest[] = []
      c = this.coalesced = {reqs, outcome: Promise.resolve().then(() => {
        this.coalesced = undefined
        return this.addBatch(reqs)
      })}
    }
    const i = c.reqs.push(req) - 1
    return c.outcome.then(out => {
      const err = out[i]
      if (err) throw err
    })
  }

  /**
   * Add many entries (one network request's worth); every entry gets its own outcome, in order. The new
   * entries go to the journal as one group (one promise, written in one batch), so the work per entry is a
   * few map lookups and a header; a repeated add (same ledger, entry and digest) joins the first one. When
   * the payloads are views of `opts.transfer` (an ArrayBuffer the caller gives up) and large enough in
   * total, their digests are verified on the codec pool instead of the main thread.
   */
  async addBatch(reqs: AddRequest[], opts: {transfer?: ArrayBuffer} = {}): Promise<Array<LogError | undefined>> {
    const out: Array<LogError | undefined> = new Array(reqs.length).fill(undefined)
    const recs: AddRecord[] = []
    let total = 0
    for (let i = 0; i < reqs.length; i++) {
      try {
        const rec = this.validate(reqs[i]!, i)
        recs.push(rec)
        total += rec.payloadLen
      } catch (err) {
        out[i] = asLogError(err)
      }
    }
    const t = opts.transfer
    let bad: Set<number> | undefined
    if (t && total >= this.opts.verifyOffloadBytes && recs.every(r => r.payload.buffer === t)) {
      const r = await this.codec.verify(t, recs)
      bad = r.bad
      recs.forEach((rec, k) => { rec.payload = rec.stored = r.payloads[k]! })
    }
    const joins: Promise<void>[] = []
    const fresh: AddRecord[] = []
    let release!: () => void
    const done = new Promise<void>(resolve => { release = resolve })
    let lastLedger: bigint | undefined
    let index: LedgerIndex | undefined
    let inLedger: InFlight[] | undefined
    let group: InFlight | undefined
    const groups: Array<[bigint, InFlight]> = []
    for (let k = 0; k < recs.length; k++) {
      const rec = recs[k]!
      const i = rec.i
      try {
        if (bad ? bad.has(k) : digestOf(rec) !== rec.digest) {
          throw checksumError(`entry ${rec.ledgerId}/${rec.entryId}`, {ledgerId: String(rec.ledgerId), entryId: String(rec.entryId)})
        }
        this.admit(rec.ledgerId, (rec.flags & RecordFlag.RECOVERY) !== 0)
        if (rec.ledgerId !== lastLedger) {
          lastLedger = rec.ledgerId
          index = this.state.ledgers.get(rec.ledgerId)
          inLedger = this.pending.get(rec.ledgerId)
          group = groups.find(g => g[0] === rec.ledgerId)?.[1]
        }
        const inflight = inLedger && inFlight(inLedger, rec.n)
        const known = index?.digestOf(rec.n) ?? inflight?.rec.digest
        if (known !== undefined) {
          if (known !== rec.digest) {
            throw new LogError(ErrorCode.ENTRY_CONFLICT, `entry ${rec.ledgerId}/${rec.entryId} already exists with different content`, {detail: {ledgerId: String(rec.ledgerId), entryId: String(rec.entryId)}})
          }
          // An idempotent retry: same answer as the first add (undici may resend a request).
          if (inflight) joins.push(inflight.done.then(() => { out[i] = inflight.rec.error }))
          continue
        }
        if (!group) {
          group = {recs: [], min: rec.n, max: rec.n, done}
          groups.push([rec.ledgerId, group])
          if (!inLedger) this.pending.set(rec.ledgerId, (inLedger = []))
          inLedger.push(group)
        }
        group.recs.push(rec)
        if (rec.n < group.min) group.min = rec.n
        if (rec.n > group.max) group.max = rec.n
        fresh.push(rec)
      } catch (err) {
        out[i] = asLogError(err)
      }
    }
    this.raiseLacs(fresh)
    try {
      if (fresh.length > 0) await this.write(fresh)
    } finally {
      for (const rec of fresh) out[rec.i] = rec.error
      for (const [ledgerId, g] of groups) {
        const list = this.pending.get(ledgerId)
        const at = list?.indexOf(g) ?? -1
        if (at >= 0) list!.splice(at, 1)
        if (list?.length === 0) this.pending.delete(ledgerId)
      }
      release()
    }
    if (joins.length > 0) await Promise.all(joins)
    return out
  }

  /**
   * The LACs that admitted adds carry count as soon as the adds arrive, before their own journal sync (as
   * in BookKeeper, where LAC watchers are told when the entry reaches ledger storage): a LAC only names
   * entries the writer already had acknowledged by Qa bookies, so it is true whether or not this add ever
   * becomes durable here. A follower's long poll then answers one journal sync earlier. The entries up to
   * it that this bookie has received but not yet made durable are answered from memory (committedInFlight).
   */
  private raiseLacs(fresh: readonly AddRecord[]): void {
    let ledger: bigint | undefined
    let lac = -1n
    for (const rec of fresh) {
      if (rec.ledgerId !== ledger) {
        if (ledger !== undefined) this.raiseLac(ledger, Number(lac))
        ledger = rec.ledgerId
        lac = rec.lac
      } else if (rec.lac > lac) {
        lac = rec.lac
      }
    }
    if (ledger !== undefined) this.raiseLac(ledger, Number(lac))
  }

  private raiseLac(ledgerId: bigint, lac: number): void {
    if (lac < 0) return
    const l = this.state.ledgerFor(ledgerId)
    if (lac > l.lac) {
      l.lac = lac
      this.notifyLac(ledgerId)
    }
  }

  /**
   * Resolves once no add of an entry in [from, to] of the ledger is still on its way to the journal: each is
   * then held (or failed). Reads wait for them above the LAC (see committedInFlight for those up to it).
   */
  private settled(ledgerId: bigint, from: number, to: number): Promise<unknown> | undefined {
    if (to < from) return undefined
    const list = this.pending.get(ledgerId)
    if (!list) return undefined
    const waits: Array<Promise<void>> = []
    for (const g of list) if (g.max >= from && g.min <= to) waits.push(g.done)
    return waits.length > 0 ? Promise.all(waits) : undefined
  }

  /**
   * Entries in [from, to] at or below the ledger's LAC whose adds are still on their way to this bookie's
   * journal, by id: reads answer them from memory, as a BookKeeper bookie answers from its write cache before
   * its journal sync. They are committed (the LAC names only entries Qa bookies acknowledged), their bytes
   * were checked against their digest on arrival, and a committed entry never changes, so the answer is right
   * whether or not this bookie's own sync of it succeeds. Waiting for that sync instead made a follower as
   * slow as the slowest bookie of the write quorum it happened to read from (its p99 was that bookie's).
   */
  private committedInFlight(ledgerId: bigint, lac: number, from: number, to: number): Map<number, AddRecord> | undefined {
    const top = Math.min(to, lac)
    const list = top >= from ? this.pending.get(ledgerId) : undefined
    if (!list) return undefined
    let out: Map<number, AddRecord> | undefined
    for (const g of list) {
      if (g.max < from || g.min > top) continue
      for (const rec of g.recs) {
        if (rec.n >= from && rec.n <= top && rec.error === undefined) (out ??= new Map()).set(rec.n, rec)
      }
    }
    return out
  }

  /** Check one request and turn it into the journal record that will carry it. */
  private validate(req: AddRequest, i: number): AddRecord {
    if (typeof req !== 'object' || req === null) throw new LogError(ErrorCode.BAD_INPUT, 'an add request must be an object')
    const ledgerId = ids.ledgerId(req.ledgerId)
    const entryId = ids.entryId(req.entryId)
    const lac = ids.lac(req.lac)
    const payload = req.payload
    if (!Buffer.isBuffer(payload)) throw new LogError(ErrorCode.BAD_INPUT, 'payload must be a Buffer')
    if (payload.length > this.opts.maxEntryBytes) {
      throw new LogError(ErrorCode.TOO_LARGE, `entry ${ledgerId}/${entryId} is ${payload.length} bytes; the limit is ${this.opts.maxEntryBytes}`, {detail: {size: payload.length, limit: this.opts.maxEntryBytes}})
    }
    const digest = req.digest
    if (!Number.isInteger(digest) || digest < 0 || digest > 0xffffffff) throw new LogError(ErrorCode.BAD_INPUT, 'digest must be an unsigned 32-bit integer')
    return {
      type: RecordType.ENTRY, flags: req.recovery === true ? RecordFlag.RECOVERY : 0, digest, ledgerId, entryId, lac,
      payloadLen: payload.length, stored: payload, payload, signed: req.signed, i, n: Number(entryId), compress: req.compress === true, error: undefined,
    }
  }

  /**
   * Journal new entries (compressing those that ask for it), in groups of at most maxBatchBytes; once a
   * group is durable its entries enter the index (synchronously, in the journal's callback), the write
   * cache and the LAC. Outcomes land in each record's `error`.
   */
  private async write(fresh: AddRecord[]): Promise<void> {
    for (const rec of fresh) {
      if (!rec.compress) continue
      const c = await maybeCompress(rec.payload)
      if (c.compressed) {
        rec.stored = c.stored
        rec.flags |= RecordFlag.LZ4
      }
    }
    // Groups small enough that the journal can fill a segment closely (it rolls between batches).
    const limit = Math.min(this.opts.maxBatchBytes, this.opts.maxSegmentBytes / 4)
    const groups: AddRecord[][] = []
    let group: AddRecord[] = []
    let bytes = 0
    for (const rec of fresh) {
      const b = recordBytes(rec.stored.length)
      if (group.length > 0 && bytes + b > limit) {
        groups.push(group)
        group = []
        bytes = 0
      }
      group.push(rec)
      bytes += b
    }
    groups.push(group)
    await Promise.all(groups.map(g => this.journal.appendGroup(g, placed => this.applyGroup(placed)).then(
      () => this.afterGroup(g),
      err => { for (const rec of g) rec.error = asLogError(err) },
    )))
  }

  /** The group is durable: into the index, before any promise settles (what a checkpoint snapshots). */
  private applyGroup(g: Array<Placed<AddRecord>>): void {
    for (const rec of g) {
      if (!this.state.apply(rec, rec)) {
        rec.error = new LogError(ErrorCode.NO_SUCH_LEDGER, `ledger ${rec.ledgerId} was deleted`, {detail: {ledgerId: String(rec.ledgerId)}})
      }
    }
  }

  /** The group's stored entries go to the write cache (as runs: one ledger, ids ascending) and wake LAC waiters. */
  private afterGroup(g: AddRecord[]): void {
    let ledger: bigint | undefined
    let ids: number[] = []
    let entries: AddRecord[] = []
    const flush = (): void => {
      if (ledger === undefined) return
      this.cache.putRun(ledger, ids, entries)
      this.notifyLac(ledger)
    }
    for (const rec of g) {
      if (rec.error) continue
      if (rec.ledgerId !== ledger || rec.n <= ids[ids.length - 1]!) {
        flush()
        ledger = rec.ledgerId
        ids = []
        entries = []
      }
      ids.push(rec.n)
      entries.push(rec)
    }
    flush()
  }

  /** Every add not yet durable (settled, never rejected). */
  private allPending(): Promise<unknown>[] {
    const out = new Set<Promise<void>>()
    for (const list of this.pending.values()) for (const g of list) out.add(g.done)
    return [...out]
  }

  // ---- reads ---------------------------------------------------------------------------------------

  /** NO_SUCH_LEDGER for a ledger this bookie deleted (its tombstone stays until its records are compacted away). */
  private refuseDeleted(ledgerId: bigint): void {
    if (this.state.tombstones.has(ledgerId)) throw new LogError(ErrorCode.NO_SUCH_LEDGER, `ledger ${ledgerId} was deleted`, {detail: {ledgerId: String(ledgerId)}})
  }

  private ledgerOrThrow(ledgerId: bigint) {
    const l = this.state.ledgers.get(ledgerId)
    if (!l) throw new LogError(ErrorCode.NO_SUCH_LEDGER, `no ledger ${ledgerId} on this bookie`, {detail: {ledgerId: String(ledgerId)}})
    return l
  }

  /**
   * One entry; an add of it that is on its way to the journal is answered from memory when the entry is at
   * or below the LAC (committedInFlight), and waited for above it (see raiseLacs).
   */
  async read(ledgerIdIn: bigint, entryIdIn: bigint): Promise<StoredEntry> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const entryId = ids.entryId(entryIdIn)
    const n = Number(entryId)
    const f = n <= this.ledgerOrThrow(ledgerId).lac ? inFlight(this.pending.get(ledgerId) ?? [], n) : undefined
    if (f !== undefined && f.rec.error === undefined) return fromRecord(f.rec)
    const settling = this.settled(ledgerId, n, n)
    if (settling) await settling
    return this.readHeld(ledgerId, entryId)
  }

  private async readHeld(ledgerId: bigint, entryId: bigint): Promise<StoredEntry> {
    for (let attempt = 0; ; attempt++) {
      const loc = this.ledgerOrThrow(ledgerId).get(Number(entryId))
      if (!loc) throw new LogError(ErrorCode.NO_SUCH_ENTRY, `no entry ${ledgerId}/${entryId} on this bookie`, {detail: {ledgerId: String(ledgerId), entryId: String(entryId)}})
      const cached = this.fromCache(ledgerId, Number(entryId), loc, false)
      if (cached) return cached
      try {
        return await this.readAt(ledgerId, entryId, loc)
      } catch (err) {
        // Compaction may have moved the entry and removed the file between lookup and read: look again.
        const now = this.state.ledgers.get(ledgerId)?.get(Number(entryId))
        if (attempt < 2 && now && (now.segmentId !== loc.segmentId || now.offset !== loc.offset)) continue
        throw err
      }
    }
  }

  private async readAt(ledgerId: bigint, entryId: bigint, loc: Location): Promise<StoredEntry> {
    const file = join(this.dir, 'segments', segmentFileName(loc.segmentId))
    const fh = await this.reader(loc.segmentId)
    const buf = Buffer.allocUnsafe(loc.length)
    const {bytesRead} = await fh.read(buf, 0, loc.length, loc.offset)
    const where = {file, offset: loc.offset, ledgerId: String(ledgerId), entryId: String(entryId)}
    const c = checkRecordHeader(buf.subarray(0, bytesRead), 0)
    if (!c.ok || c.header.ledgerId !== ledgerId || c.header.entryId !== entryId || c.header.type !== RecordType.ENTRY) {
      throw new LogError(ErrorCode.BAD_CHECKSUM, `entry ${ledgerId}/${entryId}: corrupt record at ${file}:${loc.offset} (${c.ok ? 'header names another entry' : c.end ? 'zeros' : c.reason})`, {detail: where})
    }
    const h: RecordHeader = c.header
    let payload: Buffer
    try {
      payload = await decodePayload(h, buf.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + storedLength(h)))
    } catch (err) {
      throw new LogError(ErrorCode.BAD_CHECKSUM, `entry ${ledgerId}/${entryId}: undecodable payload at ${file}:${loc.offset}`, {detail: where, cause: err})
    }
    if (!payloadMatches(h, payload)) throw checksumError(`entry ${ledgerId}/${entryId} at ${file}:${loc.offset}`, where)
    return {ledgerId, entryId, lac: h.lac, payload, digest: h.digest}
  }

  private reader(segmentId: number): Promise<FileHandle> {
    let r = this.readers.get(segmentId)
    if (!r) {
      r = openFile(join(this.dir, 'segments', segmentFileName(segmentId)), 'r')
      r.catch(() => this.readers.delete(segmentId))
      this.readers.set(segmentId, r)
    }
    return r
  }

  private async dropReader(segmentId: number): Promise<void> {
    const r = this.readers.get(segmentId)
    this.readers.delete(segmentId)
    if (r) await (await r).close().catch(() => undefined)
  }

  /**
   * Entries held in [from, to], ascending, up to maxEntries / maxBytes (at least one entry). Adds in that
   * range on their way to the journal are answered from memory at or below the LAC (committedInFlight) and
   * waited for above it (see raiseLacs).
   */
  readRange(ledgerIdIn: bigint, fromIn: bigint, toIn: bigint, limits: {maxEntries?: number; maxBytes?: number} = {}): Promise<StoredEntry[]> {
    return this.readRangeWith(ledgerIdIn, fromIn, toIn, limits, entries => this.copyViews(entries, 0))
  }

  /**
   * readRange for a caller that encodes the entries at once (the bookie's read and tail routes): they go to
   * `use` synchronously, in the same turn as the write-cache lookups, so a payload the cache holds is handed
   * over as a view of its memory instead of a copy; `use` must not keep a payload (a later add may write over
   * a view) and what it returns is the answer. Entries read from the files or still on their way to the
   * journal are their own buffers either way.
   */
  async readRangeWith<T>(ledgerIdIn: bigint, fromIn: bigint, toIn: bigint, limits: {maxEntries?: number; maxBytes?: number}, use: (entries: StoredEntry[]) => T): Promise<T> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const from = ids.entryId(fromIn)
    const to = ids.entryId(toIn)
    if (to < from) throw new LogError(ErrorCode.OUT_OF_RANGE, `range ${from}..${to} is empty`)
    const maxEntries = limits.maxEntries ?? 1000
    const maxBytes = limits.maxBytes ?? 16 * 1024 * 1024
    const lac = this.ledgerOrThrow(ledgerId).lac
    const mem = this.committedInFlight(ledgerId, lac, Number(from), Number(to))
    const settling = this.settled(ledgerId, Math.max(Number(from), lac + 1), Number(to))
    if (settling) await settling
    let list = this.ledgerOrThrow(ledgerId).idsInRange(Number(from), Number(to), maxEntries)
    if (mem) list = mergeIds(list, [...mem.keys()], maxEntries)
    const out: StoredEntry[] = []
    /** Entries of `out` from out[viewsFrom] on may hold views of the write cache (see below). */
    let viewsFrom = 0
    let bytes = 0
    for (const e of list) {
      const rec = mem?.get(e)
      let entry = rec ? fromRecord(rec) : this.cachedView(ledgerId, e)
      if (entry === undefined) {
        // A file read: adds may be written to the cache meanwhile, so the views taken so far become copies.
        this.copyViews(out, viewsFrom)
        viewsFrom = out.length
        entry = await this.readHeld(ledgerId, BigInt(e))
      }
      if (out.length > 0 && bytes + entry.payload.length > maxBytes) break
      out.push(entry)
      bytes += entry.payload.length
    }
    return use(out)
  }

  /** Entry n as the write cache holds it, its payload a view; else undefined (see fromCache). */
  private cachedView(ledgerId: bigint, n: number): StoredEntry | undefined {
    const loc = this.state.ledgers.get(ledgerId)?.get(n)
    return loc && this.fromCache(ledgerId, n, loc, true)
  }

  /**
   * Entry n from the write cache when the copy there is the one the index holds (same digest: the cache may
   * keep an older copy of an entry written twice); its payload a copy, or with `view` a view of the cache.
   */
  private fromCache(ledgerId: bigint, n: number, loc: {digest: number}, view: boolean): StoredEntry | undefined {
    const c = this.cache.get(ledgerId, n, view)
    return c && c.digest === loc.digest ? {ledgerId, entryId: BigInt(n), lac: c.lac, payload: c.payload, digest: c.digest} : undefined
  }

  /** Entries from `from` on whose payload is a view of the write cache get a copy instead (in place). */
  private copyViews(entries: StoredEntry[], from: number): StoredEntry[] {
    for (let k = from; k < entries.length; k++) {
      const e = entries[k]!
      if (this.cache.owns(e.payload)) entries[k] = {...e, payload: Buffer.from(e.payload)}
    }
    return entries
  }

  ledger(ledgerIdIn: bigint): LedgerInfo {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const l = this.ledgerOrThrow(ledgerId)
    return {ledgerId, fenced: l.fenced, lac: BigInt(l.lac), lastEntryId: BigInt(l.lastEntryId), entries: l.size, bytes: l.payloadBytes}
  }

  ledgers(): bigint[] {
    return [...this.state.ledgers.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  }

  /**
   * Long poll: resolves with the ledger's LAC as soon as it exceeds `after`, or with the current value
   * (possibly -1) when `timeoutMs` passes first.
   */
  async waitForLac(ledgerIdIn: bigint, afterIn: bigint, timeoutMs: number, signal?: AbortSignal): Promise<bigint> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const after = Number(ids.lac(afterIn))
    const current = this.state.ledgers.get(ledgerId)?.lac ?? -1
    if (current > after || timeoutMs <= 0 || signal?.aborted || this.closeNotices.has(ledgerId)) return BigInt(current)
    return new Promise<bigint>(resolve => {
      let set = this.waiters.get(ledgerId)
      if (!set) this.waiters.set(ledgerId, (set = new Set()))
      // Timeout and abort (the asker went away) end the wait the same way: with the current value.
      const done = (): void => {
        clearTimeout(w.timer)
        signal?.removeEventListener('abort', done)
        set.delete(w)
        resolve(BigInt(this.state.ledgers.get(ledgerId)?.lac ?? -1))
      }
      const w: LacWaiter = {after, resolve: lac => { signal?.removeEventListener('abort', done); resolve(lac) }, timer: setTimeout(done, timeoutMs)}
      signal?.addEventListener('abort', done, {once: true})
      set.add(w)
    })
  }

  /**
   * Explicit LAC from the writer (BookKeeper's WRITE_LAC): lets tailing readers see the last entries while
   * the writer is idle, when no later entry carries the LAC piggybacked. A hint kept in memory only: after
   * a restart the LAC is again the highest one journaled with an entry, which is never above the truth.
   */
  updateLac(ledgerIdIn: bigint, lacIn: bigint): bigint {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const lac = Number(ids.lac(lacIn))
    this.refuseDeleted(ledgerId)
    this.raiseLac(ledgerId, lac)
    return BigInt(this.state.ledgerFor(ledgerId).lac)
  }

  /**
   * A writer's LAC hint (a LAC_HINTS message on an add stream, docs/PROTOCOL.md "LAC hints"): sent when this
   * bookie has been slow to answer, so that its followers learn of confirmations before its next batch
   * carries them. Raises the LAC to `lac`, but only as far as this bookie holds every entry above its LAC
   * (durable, or received and on its way to the journal): a tail stream then finds each entry up to it, and
   * a hint that overtook its entries (a writer's new stream after a broken one) raises nothing. In memory,
   * like updateLac. A ledger this bookie does not hold is left alone. Returns the ledger's LAC.
   */
  hintLac(ledgerIdIn: bigint, lacIn: bigint): bigint {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const target = Number(ids.lac(lacIn))
    if (this.state.tombstones.has(ledgerId)) return -1n
    const list = this.pending.get(ledgerId)
    // A ledger whose first adds are still on their way to the journal has no state yet.
    const l = list === undefined ? this.state.ledgers.get(ledgerId) : this.state.ledgerFor(ledgerId)
    if (l === undefined) return -1n
    let n = l.lac
    while (n < target && (l.get(n + 1) !== undefined || receivedIntact(list, n + 1))) n++
    this.raiseLac(ledgerId, n)
    return BigInt(l.lac)
  }

  /**
   * The writer closed the ledger with `lastEntryId` as its last entry (LedgerWriter.close, after its
   * metadata says CLOSED): raises the LAC to it, and ends every LAC wait on the ledger at once, now and
   * later, so that followers at its end learn of the close without waiting out their poll (they then read
   * the metadata, which stays the truth). A hint in memory, like updateLac: lost on restart (followers then
   * notice the close at their next poll's end, as before); the most recent MAX_CLOSE_NOTICES are kept.
   */
  noteClosed(ledgerIdIn: bigint, lastEntryIdIn: bigint): bigint {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const last = Number(ids.lac(lastEntryIdIn))
    this.refuseDeleted(ledgerId)
    // An empty ledger (last -1) that this bookie holds nothing of stays unknown here: only the notice is kept.
    this.raiseLac(ledgerId, last)
    this.closeNotices.delete(ledgerId)
    this.closeNotices.set(ledgerId, last)
    if (this.closeNotices.size > MAX_CLOSE_NOTICES) this.closeNotices.delete(this.closeNotices.keys().next().value!)
    this.notifyLac(ledgerId, true)
    return BigInt(this.state.ledgers.get(ledgerId)?.lac ?? -1)
  }

  /** The last entry id of the ledger as its writer announced when closing it (noteClosed), if it did. */
  closeNotice(ledgerId: bigint): bigint | undefined {
    const n = this.closeNotices.get(ledgerId)
    return n === undefined ? undefined : BigInt(n)
  }

  private notifyLac(ledgerId: bigint, all = false): void {
    const set = this.waiters.get(ledgerId)
    if (!set) return
    const lac = this.state.ledgers.get(ledgerId)?.lac ?? -1
    for (const w of set) {
      if (all || lac > w.after) {
        clearTimeout(w.timer)
        set.delete(w)
        w.resolve(BigInt(lac))
      }
    }
    if (set.size === 0) this.waiters.delete(ledgerId)
  }

  // ---- fence, delete ---------------------------------------------------------------------------------

  /** Fence: from now on only recovery adds are accepted. Resolves once the fence is durable. */
  async fence(ledgerIdIn: bigint): Promise<LedgerInfo> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    if (this.closing) throw new LogError(ErrorCode.CLOSED, 'the storage engine is closed')
    this.refuseDeleted(ledgerId)
    const l = this.state.ledgerFor(ledgerId)
    const already = l.fenced
    l.fenced = true // refuse new ordinary adds at once, before the record is durable
    if (!already) {
      if (this.readOnlyError) throw new LogError(ErrorCode.READ_ONLY, `cannot record the fence: ${this.readOnlyError.message}`)
      await this.appendControl(RecordType.FENCE, ledgerId)
    } else {
      await Promise.all(this.allPending())
    }
    return this.ledger(ledgerId)
  }

  /** Delete a ledger: its entries disappear at once; compaction gives the space back. */
  async deleteLedger(ledgerIdIn: bigint): Promise<void> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    if (this.closing) throw new LogError(ErrorCode.CLOSED, 'the storage engine is closed')
    if (this.readOnlyError) throw new LogError(ErrorCode.READ_ONLY, `cannot record the deletion: ${this.readOnlyError.message}`)
    if (!this.state.ledgers.has(ledgerId) && !this.state.tombstones.has(ledgerId)) {
      throw new LogError(ErrorCode.NO_SUCH_LEDGER, `no ledger ${ledgerId} on this bookie`, {detail: {ledgerId: String(ledgerId)}})
    }
    this.state.dropLedger(ledgerId)
    this.closeNotices.delete(ledgerId)
    const set = this.waiters.get(ledgerId)
    if (set) for (const w of set) { clearTimeout(w.timer); w.resolve(-1n) }
    this.waiters.delete(ledgerId)
    await this.appendControl(RecordType.DELETE, ledgerId)
  }

  /** Journal a FENCE or DELETE record; applied to the state the moment it is durable. */
  private appendControl(type: RecordType, ledgerId: bigint): Promise<void> {
    const rec: JournalRecord = {type, flags: 0, digest: 0, ledgerId, entryId: 0n, lac: -1n, payloadLen: 0, stored: Buffer.alloc(0)}
    return this.journal.append(rec, placed => { this.state.apply(placed, placed) })
  }

  // ---- maintenance -----------------------------------------------------------------------------------

  /** Copy live records out of sparse sealed segments and remove them. */
  compact(opts: {threshold?: number} = {}): Promise<CompactionResult> {
    if (this.closing) return Promise.reject(new LogError(ErrorCode.CLOSED, 'the storage engine is closed'))
    return this.compactor.run(opts.threshold)
  }

  /** Write an index checkpoint now (restart then replays only what comes after it). */
  checkpoint(): Promise<void> {
    this.checkpointing ??= (async () => {
      try {
        // The index matches the journal head at every turn of the event loop (records are applied
        // synchronously when their batch is durable), so the snapshot needs no pause in adds.
        const head = this.journal.head
        const started = performance.now()
        const enc = encodeCheckpoint(this.state, {segmentId: head.segmentId, offset: head.offset, lastSeq: BigInt(head.nextSeq - 1)})
        this.bytesSinceCheckpoint = 0
        this.lastCheckpointBytes = enc.written
        // Paced, except when closing (a stop should not wait for the pace).
        await writeCheckpoint(this.dir, enc, {directIo: this.opts.directIo, pace: () => (this.closing ? 0 : this.opts.checkpointBytesPerSec)})
        channels.checkpoint.publish({dir: this.dir, bytes: enc.written, pieces: enc.files.length, ms: performance.now() - started})
      } finally {
        this.checkpointing = undefined
      }
    })()
    return this.checkpointing
  }

  private onBatch(info: {records: number; bytes: number; syncMicros: number; writeMicros: number}): void {
    const s = this.state.segment(this.journal.head.segmentId)
    if (this.journal.head.offset > s.end) s.end = this.journal.head.offset
    this.bytesSinceCheckpoint += info.bytes
    if (channels.batch.hasSubscribers) channels.batch.publish({dir: this.dir, ...info})
    if (this.bytesSinceCheckpoint >= this.checkpointEvery() && !this.checkpointing && !this.closing) {
      this.checkpoint().catch(() => {
        // A failed checkpoint only means a longer replay at the next start; the next one retries.
      })
    }
  }

  /**
   * Journal bytes between checkpoints: checkpointBytes, or CHECKPOINT_RATIO times the bytes the last
   * checkpoint wrote when that is more. A checkpoint rewrites the manifest and the pieces of the ledgers that
   * changed (checkpoint.ts), 24 bytes an entry of each, so a fixed interval let its cost grow with the size of
   * the ledgers being written (1M entries: 24 MB written, and an fsync that stalls the journal's own syncs,
   * every 64 MiB of adds); this bounds it to 1/CHECKPOINT_RATIO of the journal's bytes, and replay at restart
   * to CHECKPOINT_RATIO times what a checkpoint writes.
   */
  private checkpointEvery(): number {
    return Math.max(this.opts.checkpointBytes, CHECKPOINT_RATIO * this.lastCheckpointBytes)
  }

  private onJournalFailure(err: LogError): void {
    if (err.code !== ErrorCode.READ_ONLY || this.readOnlyError) return
    this.readOnlyError = err
    this.journal.rejectQueued(new LogError(ErrorCode.READ_ONLY, `the bookie is read-only: ${err.message}`))
    channels.readOnly.publish({dir: this.dir, readOnly: true, reason: err.message})
    this.probeTimer = setInterval(() => this.probeSpace(), this.opts.readOnlyProbeMs)
    this.probeTimer.unref()
  }

  private probeSpace(): void {
    let free = 0
    try {
      const s = statfsSync(this.dir)
      free = s.bavail * s.bsize
    } catch {
      return
    }
    if (free >= this.opts.minFreeBytes) {
      clearInterval(this.probeTimer)
      this.probeTimer = undefined
      this.readOnlyError = undefined
      channels.readOnly.publish({dir: this.dir, readOnly: false, freeBytes: free})
    }
  }

  /** Batches of at least this many payload bytes in one transferable buffer verify on the codec pool. */
  get verifyOffloadBytes(): number {
    return this.opts.verifyOffloadBytes
  }

  get readOnly(): boolean {
    return this.readOnlyError !== undefined
  }

  status(): EngineStatus {
    let entries = 0
    for (const l of this.state.ledgers.values()) entries += l.size
    let diskBytes = 0
    let liveBytes = 0
    for (const s of this.state.segments.values()) {
      diskBytes += s.end
      liveBytes += s.live
    }
    return {
      dir: this.dir,
      readOnly: this.readOnly,
      ledgers: this.state.ledgers.size,
      entries,
      segments: this.state.segments.size,
      diskBytes,
      liveBytes,
      problems: this.problems.length,
      journal: {...this.journal.stats},
      writeCache: {...this.cache.size, hits: this.cache.hits, misses: this.cache.misses},
      codecOffloads: this.codec.offloaded,
    }
  }

  /** Finish in-flight adds, checkpoint, stop the worker and pools, release the directory. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.compactTimer)
      clearInterval(this.probeTimer)
      for (const set of this.waiters.values()) for (const w of set) { clearTimeout(w.timer); w.resolve(BigInt(-1)) }
      this.waiters.clear()
      await Promise.all(this.allPending())
      await this.compactor.stop()
      try {
        if (!this.readOnlyError) await this.checkpoint()
      } catch {
        // Nothing is lost without it: the next start replays more of the journal.
      }
      await this.journal.close()
      await this.codec.close()
      for (const id of [...this.readers.keys()]) await this.dropReader(id)
      this.releaseLock()
    })()
    return this.closing
  }
}
