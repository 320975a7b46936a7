/**
 * The engine demo behind `logctl demo`: a bounded run of durable adds against a local data directory,
 * then a read-back of every entry, a restart, and a full verify — what a newcomer runs first to see the
 * storage engine work (and roughly how fast) on their own disk.
 */
import hdr from 'hdr-histogram-js'
import {entryDigest} from '../checksum.js'
import {StorageEngine} from '../engine/engine.js'
import {verifyDataDir, type VerifySummary} from '../engine/inspect.js'
import {ErrorCode, LogError} from '../errors.js'

export interface DemoOptions {
  dir: string
  entries: number
  size: number
  inFlight: number
  ledgerId: bigint
  onProgress?: (line: string) => void
}

export interface DemoResult {
  dir: string
  ledgerId: string
  entries: number
  bytes: number
  seconds: number
  entriesPerSecond: number
  mbPerSecond: number
  latencyMs: {p50: number; p99: number; max: number}
  groupCommits: number
  readBack: number
  afterRestart: {entries: number; problems: number}
  verify: Pick<VerifySummary, 'segments' | 'ledgers' | 'entries' | 'problems'>
}

function payload(i: number, size: number): Buffer {
  const line = `{"seq":${i},"level":"info","msg":"demo entry ${i}"}`
  return Buffer.from(line.padEnd(size, ' ').slice(0, size))
}

export async function runEngineDemo(o: DemoOptions): Promise<DemoResult> {
  if (!Number.isInteger(o.entries) || o.entries < 1 || o.entries > 10_000_000) throw new LogError(ErrorCode.BAD_INPUT, '--entries must be 1..10000000')
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > 1024 * 1024) throw new LogError(ErrorCode.BAD_INPUT, '--size must be 1..1048576 bytes')
  if (!Number.isInteger(o.inFlight) || o.inFlight < 1 || o.inFlight > 65536) throw new LogError(ErrorCode.BAD_INPUT, '--in-flight must be 1..65536')
  const say = o.onProgress ?? (() => undefined)
  let engine = await StorageEngine.open({dir: o.dir})
  const hist = hdr.build({lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3})
  const first = engine.ledgers().includes(o.ledgerId) ? Number(engine.ledger(o.ledgerId).lastEntryId) + 1 : 0
  let next = 0
  const batchesBefore = engine.status().journal.batches
  const t0 = process.hrtime.bigint()
  say(`appending ${o.entries} entries of ${o.size} B to ledger ${o.ledgerId} in ${o.dir} (${o.inFlight} in flight)`)
  const lane = async (): Promise<void> => {
    while (next < o.entries) {
      const id = BigInt(first + next++)
      const p = payload(Number(id), o.size)
      const start = process.hrtime.bigint()
      await engine.add({ledgerId: o.ledgerId, entryId: id, lac: id - 1n, payload: p, digest: entryDigest(o.ledgerId, id, id - 1n, p)})
      hist.recordValue(Number(process.hrtime.bigint() - start) / 1000)
    }
  }
  await Promise.all(Array.from({length: Math.min(o.inFlight, o.entries)}, lane))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const groupCommits = engine.status().journal.batches - batchesBefore
  let readBack = 0
  for (let i = first; i < first + o.entries; i++) {
    const e = await engine.read(o.ledgerId, BigInt(i))
    if (!e.payload.equals(payload(i, o.size))) throw new LogError(ErrorCode.CORRUPT, `entry ${i} read back different bytes`)
    readBack++
  }
  say(`read back ${readBack} entries; restarting the engine`)
  await engine.close()
  engine = await StorageEngine.open({dir: o.dir})
  const afterRestart = {entries: engine.ledger(o.ledgerId).entries, problems: engine.problems.length}
  await engine.close()
  const v = verifyDataDir(o.dir)
  return {
    dir: o.dir,
    ledgerId: String(o.ledgerId),
    entries: o.entries,
    bytes: o.entries * o.size,
    seconds,
    entriesPerSecond: o.entries / seconds,
    mbPerSecond: (o.entries * o.size) / seconds / 1024 / 1024,
    latencyMs: {p50: hist.getValueAtPercentile(50) / 1000, p99: hist.getValueAtPercentile(99) / 1000, max: hist.maxValue / 1000},
    groupCommits,
    readBack,
    afterRestart,
    verify: {segments: v.segments, ledgers: v.ledgers, entries: v.entries, problems: v.problems},
  }
}
