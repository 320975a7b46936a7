/**
 * Closed-loop append cells against real bookie daemons, through the client library as an application uses
 * it: this process is the client, the bookies are children (lib/bookies.ts).
 *
 * - ledgerCell: a fresh ledger (createLedger E/Qw/Qa), `inFlight` clients each calling writer.append(1 KiB)
 *   and appending again when it resolves (confirmed by Qa bookies, durably); the writer pipelines and
 *   batches underneath. Warm-up, then `seconds` or `maxEntries`; latency append() -> resolved, µs.
 * - logCell: the same loop on a fresh named log (createLog with the same E/Qw/Qa, openLog, log.append).
 *
 * Per cell also: CPU of this process (main thread and all), of the bookies, of the rest of the machine
 * (lib/machine.ts CpuMeter), and the bookies' journal group commits (records per batch, mean fdatasync) from
 * GET /v1/status before and after.
 */
import {randomBytes} from 'node:crypto'
import type {LogctlClient} from '../../src/client/client.js'
import {closedLoop, type AppendFigures} from './baselines.js'
import {journalDelta, requestDelta, type Bookies} from './bookies.js'
import {CpuMeter, histogram, pcts} from './machine.js'

export interface Quorum { ensembleSize: number; writeQuorum: number; ackQuorum: number }

export interface AppendCellOptions extends Quorum {
  label: string
  size: number
  inFlight: number
  seconds: number
  warmupSeconds: number
  maxEntries: number
}

export interface AppendCellResult extends AppendFigures {
  kind: 'ledger' | 'log'
  label: string
  bookies: number
  quorum: Quorum
  journal: {batches: number; records: number; recordsPerBatch: number; syncUsAvg: number}
  /** Requests the bookies answered during the timed part, by route (add, lac, lac-write, read, ...), summed over bookies. */
  requests: Record<string, number>
  /** Named logs: segments the log had at the end (1 = no roll during the cell). */
  segments?: number
}

function payloadsOf(size: number): Buffer[] {
  return Array.from({length: 16}, () => randomBytes(size))
}

async function timed(kind: 'ledger' | 'log', bookies: Bookies, o: AppendCellOptions, append: (i: number) => Promise<unknown>): Promise<AppendCellResult> {
  await closedLoop(append, {inFlight: o.inFlight, seconds: o.warmupSeconds, maxEntries: Math.max(o.inFlight * 4, Math.floor(o.maxEntries / 10))})
  const j0 = await bookies.journals()
  const q0 = await bookies.requestCounts()
  const h = histogram()
  const meter = new CpuMeter(() => bookies.pids())
  meter.start()
  const r = await closedLoop(append, {inFlight: o.inFlight, seconds: o.seconds, maxEntries: o.maxEntries, h})
  const cpu = meter.stop()
  const q1 = await bookies.requestCounts()
  const j1 = await bookies.journals()
  return {
    kind, label: o.label, bookies: bookies.procs.length,
    quorum: {ensembleSize: o.ensembleSize, writeQuorum: o.writeQuorum, ackQuorum: o.ackQuorum},
    size: o.size, inFlight: o.inFlight, seconds: r.seconds, entries: r.entries, entriesPerSec: r.entries / r.seconds,
    mbPerSec: (r.entries * o.size) / r.seconds / 1e6, us: pcts(h), cpu, journal: journalDelta(j0, j1), requests: requestDelta(q0, q1),
  }
}

export async function ledgerCell(client: LogctlClient, bookies: Bookies, o: AppendCellOptions): Promise<AppendCellResult> {
  const writer = await client.createLedger({ensembleSize: o.ensembleSize, writeQuorum: o.writeQuorum, ackQuorum: o.ackQuorum})
  const payloads = payloadsOf(o.size)
  try {
    return await timed('ledger', bookies, o, i => writer.append(payloads[i & 15]!))
  } finally {
    await writer.close().catch(() => undefined)
  }
}

let logSeq = 0

export async function logCell(client: LogctlClient, bookies: Bookies, o: AppendCellOptions & {segmentBytes: number}): Promise<AppendCellResult> {
  const name = `bench-${process.pid}-${++logSeq}`
  await client.createLog(name, {ensembleSize: o.ensembleSize, writeQuorum: o.writeQuorum, ackQuorum: o.ackQuorum, segmentBytes: o.segmentBytes})
  const lg = await client.openLog(name)
  const payloads = payloadsOf(o.size)
  try {
    const r = await timed('log', bookies, o, i => lg.append(payloads[i & 15]!))
    r.segments = (await client.logs.get(name)).value.segments.length
    return r
  } finally {
    await lg.close().catch(() => undefined)
  }
}

/**
 * After starting bookies: append for `seconds` to a throwaway ledger (untimed), so that neither the
 * daemons' nor this process's code is cold in the first measured cell. With `log`, half of that time goes to
 * a throwaway named log instead, so that the log layer's code is as warm as the ledger's when they are
 * compared (log.ts).
 */
export async function warmUp(client: LogctlClient, q: Quorum, o: {seconds: number; size: number; inFlight: number; log?: boolean}): Promise<void> {
  const payloads = payloadsOf(o.size)
  const seconds = o.log === true ? o.seconds / 2 : o.seconds
  const writer = await client.createLedger(q)
  try {
    await closedLoop(i => writer.append(payloads[i & 15]!), {inFlight: o.inFlight, seconds, maxEntries: Number.MAX_SAFE_INTEGER})
  } finally {
    await writer.close().catch(() => undefined)
  }
  if (o.log !== true) return
  const name = `warmup-${process.pid}-${++logSeq}`
  await client.createLog(name, q)
  const lg = await client.openLog(name)
  try {
    await closedLoop(i => lg.append(payloads[i & 15]!), {inFlight: o.inFlight, seconds, maxEntries: Number.MAX_SAFE_INTEGER})
  } finally {
    await lg.close().catch(() => undefined)
  }
}
