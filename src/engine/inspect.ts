/**
 * Offline inspection of a bookie's data directory: the library behind `logctl storage verify` and
 * `logctl storage dump`. Strictly read-only — unlike restart replay (replay.ts) nothing here truncates,
 * zeroes, moves or creates a file — so it is safe on the directory of a stopped bookie, on a copy taken
 * off a failing disk, and (with a racy tail) next to a running one.
 *
 * verifyDataDir scans EVERY segment from its header to its end (a checkpoint is checked, never used as a
 * shortcut) and rebuilds the state the way replay would (EngineState.apply: DELETE drops a ledger, a
 * compacted copy replaces its original). Bad regions are classified with the facts replay uses — only
 * one batch is in flight and acks follow its sync, so only the last batch of the last segment can be
 * torn — plus the checkpoint's position:
 *
 *   torn-tail   in the last segment, nothing valid follows it, or it lies inside the segment's final
 *               batch (the records after it all belong to that one batch, which is the one it interrupts
 *               or the next); and it lies after the checkpoint's position, if the checkpoint is in that
 *               segment (the journal head a checkpoint records only advances once a batch is durable, so
 *               everything before it was acknowledged). Nothing in a torn tail was acknowledged; the
 *               bookie cuts it (keeping a copy under torn/) when it next starts.
 *   corruption  any other bad region: damage to data that was once durable. Also: the checkpoint's
 *               segment holds records only up to an offset before the checkpoint's position (records cut
 *               off at a record boundary, or zeroed), an unreadable segment header, an unreadable FORMAT
 *               marker.
 *   bad-checkpoint / unknown-format / missing-segment: index.ckpt fails its checks, a file carries a
 *               format version this logctl does not read, the checkpoint's index points into a segment
 *               that is gone.
 * Every torn-tail here is also a torn tail to replay; the reverse does not hold, and verify reports those
 * cases as corruption because acknowledged data is involved: replay.ts accepts any region followed only
 * by batches <= the one before it + 1 (so a damaged record inside the next-to-last batch counts as torn),
 * and when the checkpoint's segment is shorter than its position it drops the checkpoint (bad-checkpoint)
 * and then treats the cut tail as torn.
 */
import {existsSync, readFileSync, statSync, type Stats} from 'node:fs'
import {join} from 'node:path'
import {ErrorCode, LogError, fromSystemError, isLogError} from '../errors.js'
import {CHECKPOINT_FILE, PIECE_DIR, decodeCheckpoint, type CheckpointPosition} from './checkpoint.js'
import {FORMAT_VERSION, RecordFlag, RecordType, SEGMENT_HEADER_BYTES, segmentFileName, type RecordHeader} from './format.js'
import {listSegments, creationInterrupted} from './replay.js'
import {scanSegment, type ScanItem} from './scan.js'
import {EngineState} from './state.js'

export type ProblemKind = 'torn-tail' | 'corruption' | 'bad-checkpoint' | 'missing-segment' | 'unknown-format'

export interface VerifyProblem {
  kind: ProblemKind
  /** Path relative to the data directory, e.g. `segments/00000000000000000002.log` or `index.ckpt`. */
  file: string
  offset: number
  /** Length of the bad region (0 when the whole file is concerned). */
  bytes: number
  reason: string
}

export interface VerifySummary {
  dir: string
  /** True when nothing but torn tails was found (a torn tail loses nothing that was acknowledged). */
  ok: boolean
  segments: number
  /** Ledgers held, after applying DELETE records (as replay counts them). */
  ledgers: number
  deletedLedgers: number
  fencedLedgers: number
  /** Readable entries of those ledgers (a compacted copy and its original count once; entries inside damaged regions do not count). */
  entries: number
  /** Uncompressed payload bytes of those entries. */
  bytes: number
  /** Valid records scanned, of every type, including deleted ledgers' and superseded copies. */
  records: number
  problems: VerifyProblem[]
  checkpoint: {present: boolean; valid: boolean}
  /** pid of a live process holding the directory's LOCK (its tail may still be growing), else null. */
  lockedBy: number | null
}

export type RecordTypeName = 'ENTRY' | 'FENCE' | 'DELETE'

export interface DumpRecord {
  ledgerId: bigint
  /** 0 for FENCE and DELETE records. */
  entryId: bigint
  type: RecordTypeName
  /** Uncompressed payload length. */
  size: number
  /** Payload length as stored (smaller than size when compressed). */
  stored: number
  compressed: boolean
  recovery: boolean
  /** A copy written by compaction. */
  compacted: boolean
  lac: bigint
  /** Group-commit number of the batch that wrote it. */
  batch: bigint
  /** Segment file name (in segments/). */
  segment: string
  offset: number
}

export interface SkippedRegion {
  segment: string
  offset: number
  bytes: number
  reason: string
}

export interface DumpOptions {
  /** Only this ledger's records (undefined: all). */
  ledger?: bigint | undefined
  /** Called for every region that holds no valid record (dump skips it; verify classifies it). */
  onSkipped?: (region: SkippedRegion) => void
}

const TYPE_NAMES: Readonly<Record<RecordType, RecordTypeName>> = {
  [RecordType.ENTRY]: 'ENTRY',
  [RecordType.FENCE]: 'FENCE',
  [RecordType.DELETE]: 'DELETE',
}

function stat(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw fromSystemError(err, path)
  }
}

/** Messages from format.ts/checkpoint.ts start with the absolute path; problems already name the file. */
function reasonOf(err: LogError, path: string): string {
  return err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message
}

/**
 * Refuse anything that is not a data directory (BAD_INPUT) or that another format version wrote
 * (BAD_FORMAT_VERSION). An unreadable FORMAT marker is returned as a problem: the segments may still
 * be worth reading.
 */
function checkDataDir(dir: string): VerifyProblem[] {
  const st = stat(dir)
  if (!st) throw new LogError(ErrorCode.BAD_INPUT, `${dir}: no such directory`, {detail: {dir}})
  if (!st.isDirectory()) throw new LogError(ErrorCode.BAD_INPUT, `${dir} is not a directory`, {detail: {dir}})
  if (!stat(join(dir, 'segments'))?.isDirectory()) {
    throw new LogError(ErrorCode.BAD_INPUT, `${dir} is not a logctl data directory (it has no segments/ directory)`, {detail: {dir}})
  }
  const marker = join(dir, 'FORMAT')
  if (!existsSync(marker)) return []
  let text: string
  try {
    text = readFileSync(marker, 'utf8')
  } catch (err) {
    throw fromSystemError(err, marker)
  }
  const m = /^logctl-data (\d+)\s*$/.exec(text)
  if (!m) return [{kind: 'corruption', file: 'FORMAT', offset: 0, bytes: 0, reason: 'not a logctl format marker'}]
  if (Number(m[1]) !== FORMAT_VERSION) {
    throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `${dir} holds on-disk format ${m[1]}; this logctl reads format ${FORMAT_VERSION}`, {detail: {dir, version: Number(m[1])}})
  }
  return []
}

function segments(dir: string): number[] {
  try {
    return listSegments(dir)
  } catch (err) {
    throw fromSystemError(err, join(dir, 'segments'))
  }
}

/** The pid in LOCK when that process is alive (lock.ts takes over a dead owner's lock the same way). */
function lockOwner(dir: string): number | null {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(join(dir, 'LOCK'), 'utf8'), 10)
  } catch {
    return null
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return null
  try {
    process.kill(pid, 0)
    return pid
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null
  }
}

interface CheckpointCheck {
  present: boolean
  valid: boolean
  /** Where the journal stood when it was written (valid checkpoints only). */
  position?: CheckpointPosition
}

function checkCheckpoint(dir: string, present: ReadonlySet<number>, problems: VerifyProblem[]): CheckpointCheck {
  const path = join(dir, CHECKPOINT_FILE)
  if (!existsSync(path)) return {present: false, valid: false}
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw fromSystemError(err, path)
  }
  const state = new EngineState()
  let position: CheckpointPosition
  try {
    position = decodeCheckpoint(bytes, state, path, name => readFileSync(join(dir, PIECE_DIR, name)))
  } catch (err) {
    if (!isLogError(err)) throw err
    const kind = err.code === ErrorCode.BAD_FORMAT_VERSION ? 'unknown-format' : 'bad-checkpoint'
    problems.push({kind, file: CHECKPOINT_FILE, offset: 0, bytes: 0, reason: reasonOf(err, path)})
    return {present: true, valid: false}
  }
  if (!present.has(position.segmentId)) {
    problems.push({kind: 'bad-checkpoint', file: CHECKPOINT_FILE, offset: 0, bytes: 0, reason: `it covers the journal up to segment ${position.segmentId}, which is missing`})
    return {present: true, valid: false}
  }
  // Only the index matters: the segment table may still list files compaction removed after writing it.
  const referenced = new Map<number, number>()
  for (const l of state.ledgers.values()) {
    for (const c of l.columns()) {
      for (const seg of c.seg) referenced.set(seg, (referenced.get(seg) ?? 0) + 1)
    }
  }
  for (const [id, n] of referenced) {
    if (present.has(id)) continue
    problems.push({kind: 'missing-segment', file: join('segments', segmentFileName(id)), offset: 0, bytes: 0, reason: `the checkpoint's index points ${n} entries into it, but the file is gone`})
  }
  return {present: true, valid: true, position}
}

type Visit =
  | {segmentId: number; item: Extract<ScanItem, {kind: 'record' | 'bad'}>; seqBefore: bigint}
  /** The segment header could not be read: no record of the file is visited. */
  | {segmentId: number; unreadable: LogError}

/** Scan every segment in order, carrying the batch number across files as replay does. */
function* walk(dir: string, ids: readonly number[]): Generator<Visit, void, undefined> {
  let lastSeq = 0n
  for (const segmentId of ids) {
    const path = join(dir, 'segments', segmentFileName(segmentId))
    const items = scanSegment(path, {minSeq: lastSeq})
    try {
      while (true) {
        let next: IteratorResult<ScanItem>
        try {
          next = items.next()
        } catch (err) {
          // The header is decoded before the first item: a throw here means the file can't be scanned at all.
          if (!isLogError(err)) throw fromSystemError(err, path)
          if (err.code !== ErrorCode.CORRUPT && err.code !== ErrorCode.BAD_FORMAT_VERSION) throw err
          yield {segmentId, unreadable: new LogError(err.code, reasonOf(err, path), {detail: err.detail})}
          break
        }
        if (next.done) break
        const item = next.value
        if (item.kind === 'end') continue
        yield {segmentId, item, seqBefore: lastSeq}
        if (item.kind === 'record') lastSeq = item.header.batchSeq
      }
    } finally {
      items.return(undefined) // closes the file when our consumer stops early
    }
  }
}

export function verifyDataDir(dir: string): VerifySummary {
  const problems = checkDataDir(dir)
  const ids = segments(dir)
  const checkpoint = checkCheckpoint(dir, new Set(ids), problems)
  // The journal head a checkpoint records only advances once a batch is durable: every byte before it
  // in its segment was acknowledged, so nothing there can be a torn write.
  const durable = checkpoint.position
  const state = new EngineState()
  const last = ids.at(-1)
  let records = 0
  // Bad regions of the last segment wait until its final batch number is known.
  const lastBad: Array<{file: string; item: Extract<ScanItem, {kind: 'bad'}>; seqBefore: bigint}> = []
  let finalSeq = 0n
  // How far the checkpoint's segment really holds records, and whether something unreadable follows.
  let durableEnd = SEGMENT_HEADER_BYTES
  let durableTail: 'clean' | 'bad' | 'unreadable' = 'clean'
  for (const v of walk(dir, ids)) {
    const file = join('segments', segmentFileName(v.segmentId))
    const inDurable = v.segmentId === durable?.segmentId
    if ('unreadable' in v) {
      // The newest segment with no header at all is a creation cut short by a crash (replay sets it aside).
      const interrupted = v.segmentId === last && !inDurable && creationInterrupted(join(dir, file))
      const kind = v.unreadable.code === ErrorCode.BAD_FORMAT_VERSION ? 'unknown-format' : interrupted ? 'torn-tail' : 'corruption'
      problems.push({kind, file, offset: 0, bytes: 0, reason: interrupted ? "the segment's creation was interrupted (no header)" : v.unreadable.message})
      if (inDurable) durableTail = 'unreadable'
    } else if (v.item.kind === 'record') {
      state.apply(v.item.header, {segmentId: v.segmentId, offset: v.item.offset, length: v.item.length})
      records++
      finalSeq = v.item.header.batchSeq
      if (inDurable) {
        durableEnd = v.item.offset + v.item.length
        durableTail = 'clean'
      }
    } else {
      if (inDurable) durableTail = 'bad'
      if (v.segmentId === last) lastBad.push({file, item: v.item, seqBefore: v.seqBefore})
      else problems.push({kind: 'corruption', file, offset: v.item.offset, bytes: v.item.end - v.item.offset, reason: v.item.reason})
    }
  }
  for (const {file, item, seqBefore} of lastBad) {
    const insideFinalBatch = item.nextSeq !== undefined && item.nextSeq <= seqBefore + 1n && item.nextSeq === finalSeq
    const acknowledged = durable !== undefined && durable.segmentId === last && item.offset < durable.offset
    const kind = (item.trailing || insideFinalBatch) && !acknowledged ? 'torn-tail' : 'corruption'
    const reason = acknowledged ? `${item.reason}; the checkpoint says this segment was durable up to offset ${durable.offset}` : item.reason
    problems.push({kind, file, offset: item.offset, bytes: item.end - item.offset, reason})
  }
  if (durable && durableTail === 'clean' && durableEnd < durable.offset) {
    // Whole records are gone from the end of the checkpoint's segment (cut at a record boundary, or
    // zeroed): nothing is left that looks bad, only the checkpoint remembers them.
    problems.push({kind: 'corruption', file: join('segments', segmentFileName(durable.segmentId)), offset: durableEnd, bytes: durable.offset - durableEnd,
      reason: `records end here, but the checkpoint says this segment was durable up to offset ${durable.offset}: acknowledged records are missing`})
  }

  let entries = 0
  let bytes = 0
  let fenced = 0
  for (const l of state.ledgers.values()) {
    entries += l.size
    bytes += l.payloadBytes
    if (l.fenced) fenced++
  }
  return {
    dir,
    ok: problems.every(p => p.kind === 'torn-tail'),
    segments: ids.length,
    ledgers: state.ledgers.size,
    deletedLedgers: state.tombstones.size,
    fencedLedgers: fenced,
    entries,
    bytes,
    records,
    problems,
    checkpoint: {present: checkpoint.present, valid: checkpoint.valid},
    lockedBy: lockOwner(dir),
  }
}

function toDumpRecord(h: RecordHeader, stored: number, segment: string, offset: number): DumpRecord {
  return {
    ledgerId: h.ledgerId,
    entryId: h.entryId,
    type: TYPE_NAMES[h.type],
    size: h.payloadLen,
    stored,
    compressed: (h.flags & RecordFlag.LZ4) !== 0,
    recovery: (h.flags & RecordFlag.RECOVERY) !== 0,
    compacted: (h.flags & RecordFlag.COMPACTED) !== 0,
    lac: h.lac,
    batch: h.batchSeq,
    segment,
    offset,
  }
}

/**
 * Every valid record, in file order, exactly as stored: records of deleted ledgers and both a compacted
 * copy and its original are listed (verify counts them as replay would). Bad regions are skipped and
 * reported through `onSkipped`; so is a segment whose header can't be read (offset 0).
 */
export function* dumpDataDir(dir: string, opts: DumpOptions = {}): Generator<DumpRecord, void, undefined> {
  checkDataDir(dir)
  for (const v of walk(dir, segments(dir))) {
    const segment = segmentFileName(v.segmentId)
    if ('unreadable' in v) {
      opts.onSkipped?.({segment, offset: 0, bytes: 0, reason: v.unreadable.message})
    } else if (v.item.kind === 'bad') {
      opts.onSkipped?.({segment, offset: v.item.offset, bytes: v.item.end - v.item.offset, reason: v.item.reason})
    } else if (opts.ledger === undefined || v.item.header.ledgerId === opts.ledger) {
      yield toDumpRecord(v.item.header, v.item.stored.length, segment, v.item.offset)
    }
  }
}
