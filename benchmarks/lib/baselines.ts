/**
 * The baselines every replicated benchmark is compared with, measured in the same run and on the same disk
 * (the definitions are benchmarks/engine.ts's, so the figures compare with docs/BENCHMARKS.md):
 *
 * - rawAppend: the disk's limit for a journal: 1 KiB records, 512 per fs.writevSync, each batch followed by
 *   fdatasync, appending to a fresh file, for `seconds`.
 * - engineAlone: the storage engine in this process, no network: a closed loop of `inFlight` clients, each
 *   computing the entry digest (as a writer does), calling engine.add() and issuing the next add when that
 *   one is durable; a fresh engine directory, default options but compactIntervalMs 0, a warm-up, then
 *   `seconds` or `maxEntries`, whichever first. Latency add() -> durable, µs.
 */
import {randomBytes} from 'node:crypto'
import {closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writevSync} from 'node:fs'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import type {Histogram} from 'hdr-histogram-js'
import {entryDigest} from '../../src/checksum.js'
import {StorageEngine, type AddRequest} from '../../src/engine/engine.js'
import {CpuMeter, histogram, pcts, recordUs, type CpuShares, type Pcts} from './machine.js'

export interface RawAppendResult {
  kind: 'raw'
  seconds: number
  records: number
  recordsPerSec: number
  mbPerSec: number
  batches: number
  batchUs: Pcts
  syncUs: Pcts
  cpu: CpuShares
  attempts?: number
  discarded?: unknown[]
}

export async function rawAppend(dir: string, o: {seconds: number; batch?: number; record?: number}): Promise<RawAppendResult> {
  const batchN = o.batch ?? 512
  const recordB = o.record ?? 1024
  const file = join(dir, 'raw-append.dat')
  const fd = openSync(file, 'w+')
  const data = randomBytes(batchN * recordB)
  const bufs = Array.from({length: batchN}, (_, i) => data.subarray(i * recordB, (i + 1) * recordB))
  try {
    const batch = histogram()
    const sync = histogram()
    let pos = 0
    let batches = 0
    const meter = new CpuMeter(() => [])
    meter.start()
    const start = performance.now()
    const end = start + o.seconds * 1000
    let now = start
    while (now < end) {
      const t0 = now
      const n = writevSync(fd, bufs, pos)
      if (n !== data.length) throw new Error(`short writev: ${n} of ${data.length}`)
      const t1 = performance.now()
      fdatasyncSync(fd)
      now = performance.now()
      recordUs(sync, (now - t1) * 1000)
      recordUs(batch, (now - t0) * 1000)
      pos += data.length
      batches++
    }
    const cpu = meter.stop()
    const seconds = (now - start) / 1000
    const records = batches * batchN
    return {kind: 'raw', seconds, records, recordsPerSec: records / seconds, mbPerSec: (records * recordB) / seconds / 1e6, batches, batchUs: pcts(batch), syncUs: pcts(sync), cpu}
  } finally {
    closeSync(fd)
    rmSync(file, {force: true})
  }
}

export interface ClosedLoopResult { entries: number; seconds: number }

/**
 * A closed loop of `inFlight` clients: each calls `op(i)` and issues its next call when that one resolves,
 * until `seconds` pass or `maxEntries` were issued; then waits for the calls in flight. Latency of each call
 * in µs into `h`. `seconds` runs from the first call to the last completion.
 */
export async function closedLoop(op: (i: number) => Promise<unknown>, o: {inFlight: number; seconds: number; maxEntries: number; h?: Histogram | undefined}): Promise<ClosedLoopResult> {
  let stop = false
  let issued = 0
  let done = 0
  const timer = setTimeout(() => { stop = true }, o.seconds * 1000)
  const start = performance.now()
  let last = start
  const h = o.h
  const client = async (): Promise<void> => {
    while (!stop && issued < o.maxEntries) {
      const i = issued++
      const t0 = performance.now()
      await op(i)
      last = performance.now()
      if (h) recordUs(h, (last - t0) * 1000)
      done++
    }
  }
  try {
    await Promise.all(Array.from({length: o.inFlight}, client))
  } finally {
    clearTimeout(timer)
  }
  return {entries: done, seconds: (last - start) / 1000}
}

/** What every closed-loop append cell reports (the engine alone here, ledgers and logs in replicated.ts). */
export interface AppendFigures {
  size: number
  inFlight: number
  seconds: number
  entries: number
  entriesPerSec: number
  /** Payload bytes confirmed (1 copy), MB/s. */
  mbPerSec: number
  us: Pcts
  cpu: CpuShares
  /** retryNoisy's bookkeeping: attempts made, and the disturbed ones set aside. */
  attempts?: number
  discarded?: unknown[]
}

export interface EngineAloneResult extends AppendFigures {
  kind: 'engine'
  recordsPerBatch: number
  syncUsAvg: number
}

const LEDGER = 1n

export async function engineAlone(root: string, o: {size: number; inFlight: number; seconds: number; warmupSeconds: number; maxEntries: number}): Promise<EngineAloneResult> {
  const dir = mkdtempSync(join(root, `engine-${o.size}-${o.inFlight}-`))
  const engine = await StorageEngine.open({dir, compactIntervalMs: 0})
  const payloads = Array.from({length: 16}, () => randomBytes(o.size))
  let nextId = 0
  let lastAcked = -1
  // As benchmarks/engine.ts's load generator: ids count up across warm-up and timed part, each client
  // computes the digest as a writer does.
  const add = async (): Promise<void> => {
    const id = nextId++
    const entryId = BigInt(id)
    const lac = BigInt(lastAcked)
    const payload = payloads[id & 15]!
    const req: AddRequest = {ledgerId: LEDGER, entryId, lac, payload, digest: entryDigest(LEDGER, entryId, lac, payload)}
    await engine.add(req)
    if (id > lastAcked) lastAcked = id
  }
  try {
    await closedLoop(add, {inFlight: o.inFlight, seconds: o.warmupSeconds, maxEntries: Math.max(o.inFlight * 4, Math.floor(o.maxEntries / 10))})
    const j0 = engine.status().journal
    const h = histogram()
    const meter = new CpuMeter(() => [])
    meter.start()
    const r = await closedLoop(add, {inFlight: o.inFlight, seconds: o.seconds, maxEntries: o.maxEntries, h})
    const cpu = meter.stop()
    const j1 = engine.status().journal
    const batches = Math.max(1, j1.batches - j0.batches)
    return {
      kind: 'engine', size: o.size, inFlight: o.inFlight, seconds: r.seconds, entries: r.entries,
      entriesPerSec: r.entries / r.seconds, mbPerSec: (r.entries * o.size) / r.seconds / 1e6, us: pcts(h),
      recordsPerBatch: (j1.records - j0.records) / batches, syncUsAvg: (j1.syncMicrosTotal - j0.syncMicrosTotal) / batches, cpu,
    }
  } finally {
    await engine.close()
    rmSync(dir, {recursive: true, force: true})
  }
}
