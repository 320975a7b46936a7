/**
 * Restart: rebuild EngineState from the last checkpoint plus the records written after it.
 *
 * - Segments the checkpoint covers are not read again; replay starts at the checkpoint's position.
 * - A bad region at the end of the active (last) segment, or one inside its last batch, is a torn write
 *   from a crash: nothing in it was acknowledged (acks follow the sync of a whole batch, and only one batch
 *   is in flight). Its bytes are copied to torn/<segment>.<offset>.torn, then zeroed in place, and writing
 *   resumes there.
 * - Any other bad region is corruption of data that was once durable: it is reported (file, offset,
 *   reason) and left as it is, replay resumes at the next valid record, and reads of entries in it fail
 *   with BAD_CHECKSUM so that a client reads them from another replica.
 */
import {closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {ErrorCode, LogError, isLogError} from '../errors.js'
import {readCheckpoint, type CheckpointPosition} from './checkpoint.js'
import {parseSegmentFileName, SEGMENT_HEADER_BYTES, segmentFileName} from './format.js'
import {preadFully} from './pio.js'
import {readSegmentHeader, scanSegment, type ScanItem} from './scan.js'
import {EngineState} from './state.js'

export interface StorageProblem {
  kind: 'torn-tail' | 'corruption' | 'missing-segment' | 'bad-checkpoint'
  file: string
  offset: number
  bytes: number
  reason: string
  /** Where the cut bytes were kept (torn tails only). */
  savedAs?: string
}

export interface ReplayResult {
  state: EngineState
  /** The active segment and where the next write goes; `create` when that segment must be made first. */
  head: {segmentId: number; offset: number; create: boolean}
  lastSeq: bigint
  problems: StorageProblem[]
  replayedBytes: number
  usedCheckpoint: boolean
}

export function listSegments(dir: string): number[] {
  return readdirSync(join(dir, 'segments'))
    .map(parseSegmentFileName)
    .filter((id): id is number => id !== undefined)
    .sort((a, b) => a - b)
}

function saveAndZero(dir: string, file: string, segmentId: number, offset: number, end: number): string {
  const len = end - offset
  const bytes = Buffer.alloc(len)
  const fd = openSync(file, 'r+')
  try {
    const got = preadFully(fd, bytes, 0, len, offset)
    mkdirSync(join(dir, 'torn'), {recursive: true})
    const saved = join(dir, 'torn', `${segmentFileName(segmentId)}.${offset}.torn`)
    writeFileSync(saved, bytes.subarray(0, got), {flush: true})
    writeSync(fd, Buffer.alloc(got), 0, got, offset)
    fdatasyncSync(fd)
    return saved
  } finally {
    closeSync(fd)
  }
}

/** A file shorter than a segment header, or whose header area is all zeros: its creation never finished. */
export function creationInterrupted(file: string): boolean {
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(SEGMENT_HEADER_BYTES)
    const n = readSync(fd, b, 0, b.length, 0)
    return n < SEGMENT_HEADER_BYTES || b.every(x => x === 0)
  } finally {
    closeSync(fd)
  }
}

export function replay(dir: string): ReplayResult {
  const problems: StorageProblem[] = []
  let state = new EngineState()
  let ckpt: CheckpointPosition | undefined
  try {
    ckpt = readCheckpoint(dir, state)
  } catch (err) {
    if (isLogError(err) && err.code === ErrorCode.BAD_FORMAT_VERSION) throw err
    problems.push({kind: 'bad-checkpoint', file: join(dir, 'index.ckpt'), offset: 0, bytes: 0, reason: (err as Error).message})
    state = new EngineState()
    ckpt = undefined
  }
  const segments = listSegments(dir)
  const present = new Set(segments)
  for (const id of state.segments.keys()) {
    if (!present.has(id)) {
      problems.push({kind: 'missing-segment', file: join(dir, 'segments', segmentFileName(id)), offset: 0, bytes: 0, reason: 'segment named by the checkpoint is missing'})
      state.segments.delete(id)
    }
  }
  // Everything before the checkpoint's position was durable (acknowledged) when it was taken: damage there is
  // never a torn write, even if the checkpoint itself can't be used.
  const durableFloor = ckpt ? {segmentId: ckpt.segmentId, offset: ckpt.offset} : {segmentId: 0, offset: 0}
  const ckptFile = ckpt ? join(dir, 'segments', segmentFileName(ckpt.segmentId)) : ''
  const ckptSegmentSize = ckpt && present.has(ckpt.segmentId) ? statSync(ckptFile).size : -1
  if (ckpt && ckptSegmentSize < ckpt.offset) {
    // The checkpoint points past the data there is (its file is gone or was cut short): acknowledged data is
    // missing. Report it, trust nothing of the checkpoint, and replay everything there is.
    problems.push({kind: 'corruption', file: ckptFile, offset: Math.max(0, ckptSegmentSize), bytes: ckpt.offset - Math.max(0, ckptSegmentSize), reason: `segment ${ckpt.segmentId} is missing or shorter than the checkpoint says (acknowledged data lost)`})
    problems.push({kind: 'bad-checkpoint', file: join(dir, 'index.ckpt'), offset: 0, bytes: 0, reason: `segment ${ckpt.segmentId} is missing or shorter than the checkpoint says`})
    state = new EngineState()
    ckpt = undefined
  }

  let lastSeq = ckpt?.lastSeq ?? 0n
  let replayedBytes = 0
  let head: ReplayResult['head'] | undefined
  const last = segments.at(-1)
  for (const id of segments) {
    if (ckpt && id < ckpt.segmentId) continue
    const file = join(dir, 'segments', segmentFileName(id))
    const isLast = id === last
    const from = ckpt && id === ckpt.segmentId ? ckpt.offset : undefined
    const seg = state.segment(id)
    let end = from ?? seg.end
    try {
      readSegmentHeader(file)
    } catch (err) {
      if (!isLogError(err) || err.code !== ErrorCode.CORRUPT) throw err
      if (isLast && creationInterrupted(file)) {
        // A crash between creating the newest segment and syncing its header (the worker syncs the header
        // before it writes any record, so nothing here was ever acknowledged): keep the file aside and
        // create this segment again.
        mkdirSync(join(dir, 'torn'), {recursive: true})
        const savedAs = join(dir, 'torn', `${segmentFileName(id)}.incomplete`)
        renameSync(file, savedAs)
        problems.push({kind: 'torn-tail', file, offset: 0, bytes: statSync(savedAs).size, reason: 'the segment\'s creation was interrupted (no header)', savedAs})
        state.segments.delete(id)
        head = {segmentId: id, offset: 0, create: true}
        continue
      }
      // An unreadable segment header: nothing in the file can be trusted or appended to. Report it, keep
      // the file for the operator, and carry on with the others (writes go to a fresh segment).
      problems.push({kind: 'corruption', file, offset: 0, bytes: 0, reason: err.message})
      seg.sealed = true
      continue
    }
    // Bad regions are judged once the whole segment is read: one inside the active segment is a torn
    // write only if nothing after it comes from a later batch than the one that may have been torn.
    const bads: Array<{item: Extract<ScanItem, {kind: 'bad'}>; seqBefore: bigint; maxAfter: bigint}> = []
    for (const item of scanSegment(file, from === undefined ? {minSeq: lastSeq} : {from, minSeq: lastSeq})) {
      if (item.kind === 'record') {
        state.apply(item.header, {segmentId: id, offset: item.offset, length: item.length})
        lastSeq = item.header.batchSeq
        replayedBytes += item.length
        end = item.offset + item.length
        for (const b of bads) if (lastSeq > b.maxAfter) b.maxAfter = lastSeq
      } else if (item.kind === 'bad') {
        bads.push({item, seqBefore: lastSeq, maxAfter: 0n})
      }
    }
    for (const {item, seqBefore, maxAfter} of bads) {
      // Torn only where acknowledged data can't be: past the checkpoint's (durable) position, and either
      // at the very end or followed by records of just one batch, the one right after the last good record.
      const pastDurable = id > durableFloor.segmentId || (id === durableFloor.segmentId && item.offset >= durableFloor.offset)
      const oneBatchAfter = item.nextSeq === maxAfter && maxAfter <= seqBefore + 1n
      if (isLast && pastDurable && (item.trailing || oneBatchAfter)) {
        const savedAs = saveAndZero(dir, file, id, item.offset, item.end)
        problems.push({kind: 'torn-tail', file, offset: item.offset, bytes: item.end - item.offset, reason: item.reason, savedAs})
      } else {
        problems.push({kind: 'corruption', file, offset: item.offset, bytes: item.end - item.offset, reason: item.reason})
        if (item.end > end) end = item.end
      }
    }
    seg.end = Math.max(seg.end, end)
    seg.sealed = !isLast
    if (isLast) head = {segmentId: id, offset: end, create: false}
  }
  head ??= {segmentId: (last ?? 0) + 1, offset: 0, create: true}
  return {state, head, lastSeq, problems, replayedBytes, usedCheckpoint: ckpt !== undefined}
}

/** The data directory's format marker: refuse a directory written by another format version. */
export function checkFormatMarker(dir: string, version: number): void {
  const file = join(dir, 'FORMAT')
  if (!existsSync(file)) {
    writeFileSync(file, `logctl-data ${version}\n`, {flush: true})
    return
  }
  const m = /^logctl-data (\d+)\s*$/.exec(readFileSync(file, 'utf8'))
  if (!m) throw new LogError(ErrorCode.CORRUPT, `${file} is not a logctl format marker`, {detail: {file}})
  if (Number(m[1]) !== version) {
    throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `${dir} holds on-disk format ${m[1]}; this logctl reads format ${version}`, {detail: {dir, version: Number(m[1])}})
  }
}
