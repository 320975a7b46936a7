/**
 * Named logs against bare ledgers, and a follower's tail latency (issue "Named logs"; docs/BENCHMARKS.md has
 * the figures and how to read them).
 *
 *   npx tsc -b && node dist/benchmarks/log.js [--quick] [--json] [--dir D] [--bookies 3|1] [--rounds R]
 *        [--seconds S] [--max-entries N] [--segment-bytes B]
 *        [--tail-seconds S] [--tail-warmup S] [--rate N,... | --rate-fraction F,...] [--follower child|inproc]
 *        [--follower-node-args="..."]   (Node flags of the follower process; default APP_NODE_FLAGS, "" for none)
 *        [--writer-prof DIR]            (diagnostics: a V8 CPU profile of this process during each tail run's measured part)
 *        [--timeline FILE]              (diagnostics: per 100 ms of each tail run, warm-up included, the worst ack -> received and write latency)
 *        [--wait-quiet S] [--retry-noisy N] [--bookie-node-args="--cpu-prof ..."]
 *        [--bookie-engine '{"verifyOffloadBytes":1073741824}'] [--bookie-log DIR] [--writer maxRequestsPerBookie=1,explicitLacMs=0]   (diagnostics)
 *
 * Bookie daemons in child processes (3, E3 Qw3 Qa2; or --bookies 1, E1 Qw1 Qa1), this process the client.
 *
 * 1. Throughput: a closed loop of 1024 clients appending 1 KiB, to a fresh bare ledger (writer.append) and
 *    to a fresh named log with the same E/Qw/Qa (log.append), in R rounds ordered ABBA (ledger, log, log,
 *    ledger, ...) so neither side always runs first; ratio log / ledger per pair of cells, median over
 *    rounds. The log's segments are --segment-bytes (default 1 GiB), so no cell rolls a segment (the
 *    table shows the segment count); each log entry carries the log's 8-byte timestamp header on top of
 *    the 1 KiB.
 * 2. Tail latency: a fresh log per run; a writer at a fixed rate (half of the log's median closed-loop
 *    throughput measured in step 1, the target's point, and 0.25 and 0.05 of it for the shape of the
 *    curve), sends scheduled by intended time (entry i is due at t0 + i/rate; a 1 ms timer issues every
 *    entry that is due, so a late tick delays entries and that delay counts), and a
 *    follower (log.follow from offset 0) in another process (default) or in this one. The follower process
 *    is one for all tail runs (a consumer is long-lived), started after step 1 and warmed up by an
 *    unmeasured run at half the highest rate: started cold for each run, its first second of compiling and
 *    catching up (on the same two cores) could push the writer into a backlog it never left. Each payload carries
 *    its sequence number; times are process.hrtime (CLOCK_MONOTONIC, one clock for every process on the
 *    machine). Reported, over the entries after a warm-up: append acknowledged -> follower received (the
 *    issue's figure: "append acknowledged -> a follower has it"), intended send -> follower received (end to
 *    end, the writer's own latency included), and intended send -> acknowledged.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {appendFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {Session} from 'node:inspector/promises'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {LogctlClient} from '../src/client/client.js'
import type {WriterOptions} from '../src/client/ledger-writer.js'
import {BOOKIE_FLAGS, Bookies, bookieFlagNotes, bookieFlagOptions, journalDelta, requestDelta, splitNodeArgs} from './lib/bookies.js'
import type {JournalStats} from '../src/engine/journal.js'
import {CELL_FLAGS, CpuMeter, fmt1, fmt2, fmtInt, fmtPct, fmtUs, histogram, log, loadLine, machineInfo, machineLine, median, pcts, pickDir, recordUs, reporter, retryNoisy, settle, table, toJson, verdict, type CpuShares, type Pcts} from './lib/machine.js'
import {ledgerCell, logCell, warmUp, type AppendCellResult, type Quorum} from './lib/replicated.js'
import {APP_NODE_FLAGS} from '../src/server/node-flags.js'
import {logChannels} from '../src/client/log.js'

const {values: flags} = parseArgs({
  options: {
    ...CELL_FLAGS,
    bookies: {type: 'string'},
    rounds: {type: 'string'},
    'segment-bytes': {type: 'string'},
    'tail-seconds': {type: 'string'},
    'tail-warmup': {type: 'string'},
    rate: {type: 'string'},
    'rate-fraction': {type: 'string'},
    follower: {type: 'string'},
    'follower-node-args': {type: 'string'},
    timeline: {type: 'string'},
    'writer-prof': {type: 'string'},
    ...BOOKIE_FLAGS,
    writer: {type: 'string'},
    // internal: the follower process
    'follower-child': {type: 'boolean', default: false},
    metadata: {type: 'string'},
    log: {type: 'string'},
    total: {type: 'string'},
  },
})

const QUICK = flags.quick === true
const BOOKIES = Number(flags.bookies ?? 3)
const CFG = {
  bookies: BOOKIES,
  quorum: (BOOKIES >= 3 ? {ensembleSize: 3, writeQuorum: 3, ackQuorum: 2} : {ensembleSize: 1, writeQuorum: 1, ackQuorum: 1}) as Quorum,
  size: 1024,
  inFlight: 1024,
  rounds: Number(flags.rounds ?? (QUICK ? 1 : 4)),
  cellSeconds: Number(flags.seconds ?? (QUICK ? 1 : 3)),
  warmupSeconds: QUICK ? 0.3 : 0.5,
  maxEntries: Number(flags['max-entries'] ?? (QUICK ? 300_000 : 2_000_000)),
  segmentBytes: Number(flags['segment-bytes'] ?? 1024 ** 3),
  tailSeconds: Number(flags['tail-seconds'] ?? (QUICK ? 2 : 6)),
  /**
   * Entries of the first seconds are not counted: a fresh log, writer and follower start with a backlog
   * (streams opening, code not yet optimised) that takes a second or two to drain at these rates, and the
   * target is about the steady state. --tail-warmup S overrides.
   */
  tailWarmupSeconds: Number(flags['tail-warmup'] ?? (QUICK ? 0.5 : 3)),
  /** Writer rates of the tail-latency runs: fixed (--rate), or fractions of the log's measured max (the target is judged at 0.5). */
  rates: flags.rate === undefined ? undefined : flags.rate.split(',').map(Number),
  rateFractions: (flags['rate-fraction'] ?? (QUICK ? '0.5' : '0.05,0.25,0.5')).split(',').map(Number),
  follower: (flags.follower ?? 'child') as 'child' | 'inproc',
  /** The follower process's Node flags: what the README advises applications (src/server/node-flags.ts). */
  followerNodeArgs: flags['follower-node-args'] === undefined ? [...APP_NODE_FLAGS] : splitNodeArgs(flags['follower-node-args']),
  waitQuiet: Number(flags['wait-quiet'] ?? 0),
  retryNoisy: Number(flags['retry-noisy'] ?? 0),
  noisyPct: 25,
  /** --bookie-node-args, and for diagnostics --bookie-engine, --bookie-log (lib/bookies.ts). */
  bookieOpts: bookieFlagOptions(flags),
  bookieTimeoutMs: 30_000,
  /** Diagnostics only: LedgerWriter options other than the defaults (the output says so). */
  writer: Object.fromEntries((flags.writer ?? '').split(',').filter(Boolean).map(kv => {
    const [k, v] = kv.split('=')
    return [k!.trim(), Number(v)]
  })) as WriterOptions,
}

const say = reporter(flags.json === true)

// ---- the follower ------------------------------------------------------------------------------------

/**
 * Follow `name` from offset 0 until `total` entries arrived; the receive time (hrtime ns) of each, by the
 * sequence number in its payload's first 8 bytes.
 */
async function follow(client: LogctlClient, name: string, total: number, ready: () => void): Promise<BigInt64Array> {
  const lg = await client.openLog(name)
  const recv = new BigInt64Array(total)
  let got = 0
  for await (const e of lg.follow({from: 0n})) {
    const now = process.hrtime.bigint()
    const seq = Number(e.payload.readBigUInt64BE(0))
    if (seq < total) recv[seq] = now
    if (got === 0) ready() // the writer's first entry arrived: following
    if (++got >= total) break
  }
  return recv
}

/**
 * The follower process: one for the whole benchmark (a follower is a long-lived consumer; a process started
 * cold for each run spent its first second compiling and catching up, on the same two cores as the writer
 * and bookies). It connects once, then follows each log it is sent ({type: 'follow'}) and answers
 * 'ready' (the log's first entry arrived) and 'done' (receive times) for each.
 */
async function followerChild(): Promise<void> {
  const client = await LogctlClient.connect({metadata: flags.metadata!, bookieTimeoutMs: CFG.bookieTimeoutMs})
  let chain = Promise.resolve()
  process.on('message', (m: {type: string; log?: string; total?: number}) => {
    if (m.type === 'exit') {
      chain = chain.then(() => client.close()).finally(() => process.exit(0))
      return
    }
    if (m.type !== 'follow') return
    chain = chain.then(async () => {
      const recv = await follow(client, m.log!, m.total!, () => process.send!({type: 'ready'}))
      await new Promise<void>(resolve => process.send!({type: 'done', recv: Buffer.from(recv.buffer).toString('base64')}, () => resolve()))
    }).catch(err => {
      console.error(err)
      process.exit(1)
    })
  })
  process.send!({type: 'connected'})
}

interface Follower {
  pid: number | undefined
  /** Open `name` and follow it from offset 0: `ready` once its first entry arrived, `result` the receive times. */
  follow: (name: string, total: number) => {ready: Promise<void>; result: Promise<BigInt64Array>}
  close: () => void
}

async function startFollower(client: LogctlClient, metadata: string): Promise<Follower> {
  if (CFG.follower === 'inproc') {
    return {
      pid: undefined,
      close: () => undefined,
      follow: (name, total) => {
        let readyFn: () => void = () => undefined
        const ready = new Promise<void>(resolve => { readyFn = resolve })
        const result = follow(client, name, total, readyFn)
        return {ready: Promise.race([ready, result.then(() => undefined)]), result}
      },
    }
  }
  const script = fileURLToPath(import.meta.url)
  const child: ChildProcess = fork(script, ['--follower-child', '--metadata', metadata], {stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...CFG.followerNodeArgs]})
  const onExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', onExit)
  let failed: Error | undefined
  const waiters = new Set<(m: {type: string; recv?: string} | Error) => void>()
  child.on('message', (m: {type: string; recv?: string}) => { for (const w of [...waiters]) w(m) })
  child.once('exit', (code, signal) => {
    process.removeListener('exit', onExit)
    failed = new Error(`the follower process exited (${code ?? signal})`)
    for (const w of [...waiters]) w(failed)
  })
  /** The next message of `type` from the child (rejects if it exits first). */
  const next = (type: string): Promise<{type: string; recv?: string}> => new Promise((resolve, reject) => {
    if (failed) return reject(failed)
    const w = (m: {type: string; recv?: string} | Error): void => {
      if (m instanceof Error) {
        waiters.delete(w)
        reject(m)
      } else if (m.type === type) {
        waiters.delete(w)
        resolve(m)
      }
    }
    waiters.add(w)
  })
  await next('connected')
  return {
    pid: child.pid,
    close: () => {
      if (child.connected) child.send({type: 'exit'})
      setTimeout(() => child.kill('SIGKILL'), 5000).unref()
    },
    follow: (name, total) => {
      const ready = next('ready').then(() => undefined)
      const done = next('done')
      ready.catch(() => undefined)
      done.catch(() => undefined)
      child.send({type: 'follow', log: name, total})
      const result = done.then(m => {
        const b = Buffer.from(m.recv!, 'base64')
        return new BigInt64Array(b.buffer, b.byteOffset, b.length / 8)
      })
      return {ready, result}
    },
  }
}

// ---- the tail-latency run ----------------------------------------------------------------------------

interface TailResult {
  rate: number
  follower: 'child' | 'inproc'
  seconds: number
  warmupEntries: number
  measuredEntries: number
  achievedRate: number
  missing: number
  errors: number
  /** intended send -> follower received (end to end). */
  endToEnd: Pcts
  /** append acknowledged -> follower received. */
  ackToReceived: Pcts
  /** intended send -> append acknowledged (the writer's open-loop latency). */
  write: Pcts
  /** intended send -> append() called (the scheduler's own delay; part of the two figures above). */
  issueLag: Pcts
  cpu: CpuShares
  /** CPU of the follower process alone and of the bookies alone, % of one core (child follower only). */
  followerPct: number
  bookiesPct: number
  /** Requests per second the bookies answered during the measured part, by route, summed over bookies. */
  requestsPerSec: Record<string, number>
  /** The bookies' journal group commits during the measured part (summed over bookies). */
  journal: {batchesPerSec: number; recordsPerBatch: number; syncUsAvg: number}
  segments: number
  /** Segment rolls during the run (warm-up included), how long appends waited for each (LogWriter, logChannels.roll). */
  rolls: {count: number; p50Ms: number; maxMs: number}
  attempts?: number
  discarded?: unknown[]
}

let tailSeq = 0

async function tailRun(client: LogctlClient, bookies: Bookies, follower: Follower, rate: number, seconds = CFG.tailSeconds, warmupSeconds = CFG.tailWarmupSeconds): Promise<TailResult> {
  const name = `tail-${process.pid}-${++tailSeq}`
  await client.createLog(name, {...CFG.quorum, segmentBytes: CFG.segmentBytes})
  const lg = await client.openLog(name)
  const rollMs: number[] = []
  const onRoll = (m: unknown): void => { if ((m as {log: string}).log === name) rollMs.push((m as {ms: number}).ms) }
  logChannels.roll.subscribe(onRoll)
  const warmupN = Math.round(rate * warmupSeconds)
  const total = warmupN + Math.round(rate * seconds)
  const following = follower.follow(name, total)
  const template = randomBytes(CFG.size)
  // Payloads are carved from 1 MiB slabs filled with the template (one native fill per 1024 entries), not
  // allocated and copied one by one: in a --writer-prof profile of a backlogged writer, Buffer.allocUnsafe's
  // 8 KiB pools (createUnsafeBuffer) and the per-entry copy took 8 % and 8 % of its samples, work of this
  // harness, not of logctl. Each payload stays unchanged until acknowledged.
  let slab = Buffer.alloc(0)
  let slabUsed = 0
  const nextPayload = (): Buffer => {
    if (slabUsed * CFG.size >= slab.length) {
      slab = Buffer.allocUnsafeSlow(1024 * CFG.size).fill(template)
      slabUsed = 0
    }
    return slab.subarray(slabUsed * CFG.size, ++slabUsed * CFG.size)
  }
  const ack = new BigInt64Array(total)
  const issued = new BigInt64Array(total)
  let acked = 0
  let errors = 0
  let allAcked: () => void = () => undefined
  const done = new Promise<void>(resolve => { allAcked = resolve })
  const intervalNs = 1e9 / rate
  const meter = new CpuMeter(() => [...bookies.pids(), ...(follower.pid ? [follower.pid] : [])])
  const fMeter = new CpuMeter(() => (follower.pid ? [follower.pid] : []))
  const bMeter = new CpuMeter(() => bookies.pids())
  let q0: Promise<Record<string, number>> | undefined
  let j0: Promise<JournalStats[]> | undefined
  let prof: Promise<Session> | undefined
  let next = 0
  const send = (i: number): void => {
    const buf = nextPayload()
    buf.writeBigUInt64BE(BigInt(i), 0)
    issued[i] = process.hrtime.bigint()
    lg.append(buf).then(() => { ack[i] = process.hrtime.bigint() }, () => { errors++ }).finally(() => { if (++acked === total) allAcked() })
  }
  // Entry 0 first, alone: the schedule starts once the follower has it (a consumer is already following
  // when the traffic comes; a log's first segment is created by its first append, and a follower of a log
  // without one looks at the metadata every 200 ms).
  send(next++)
  await Promise.race([following.ready, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the follower did not get the first entry within 30 s')), 30_000).unref())])
  const t0 = process.hrtime.bigint() + 5_000_000n
  const due = (i: number): bigint => t0 + BigInt(Math.round(i * intervalNs))
  try {
    await new Promise<void>(resolve => {
      const tick = (): void => {
        const now = process.hrtime.bigint()
        while (next < total && due(next) <= now) {
          const i = next++
          if (i === warmupN) {
            q0 = bookies.requestCounts()
            if (flags['writer-prof'] !== undefined) prof = startProfile()
            j0 = bookies.journals()
            meter.start()
            fMeter.start()
            bMeter.start()
          }
          send(i)
        }
        if (next < total) setTimeout(tick, 1)
        else resolve()
      }
      setTimeout(tick, 1)
    })
    await done
    if (prof !== undefined) await stopProfile(await prof, join(flags['writer-prof']!, `writer-${rate}-${tailSeq}.cpuprofile`))
    const recv = await Promise.race([following.result, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the follower did not receive every entry within 60 s')), 60_000).unref())])
    const cpu = meter.stop()
    const followerPct = fMeter.stop().childPct
    const bookiesPct = bMeter.stop().childPct
    const qd = requestDelta(await q0!, await bookies.requestCounts())
    const jd = journalDelta(await j0!, await bookies.journals())
    const e2e = histogram()
    const vis = histogram()
    const write = histogram()
    const lag = histogram()
    let missing = 0
    let lastRecv = 0n
    for (let i = warmupN; i < total; i++) {
      const d = due(i)
      const r = recv[i]!
      recordUs(lag, Number(issued[i]! - d) / 1000)
      if (ack[i]! > 0n) recordUs(write, Number(ack[i]! - d) / 1000)
      if (r === 0n) { missing++; continue }
      if (r > lastRecv) lastRecv = r
      recordUs(e2e, Number(r - d) / 1000)
      if (ack[i]! > 0n) recordUs(vis, Number(r - ack[i]!) / 1000)
    }
    if (flags.timeline !== undefined) writeTimeline(flags.timeline, rate, warmupN, total, due, ack, recv)
    const seconds = Number(due(total - 1) - due(warmupN)) / 1e9
    // The counts span from the warm-up's end to the follower's last entry (a little longer than `seconds`).
    const span = Number(process.hrtime.bigint() - due(warmupN)) / 1e9
    const requestsPerSec = Object.fromEntries(Object.entries(qd).map(([k, v]) => [k, v / span]))
    const segments = (await client.logs.get(name)).value.segments.length
    return {
      rate, follower: CFG.follower, seconds, warmupEntries: warmupN, measuredEntries: total - warmupN,
      achievedRate: (total - warmupN) / (Number(issued[total - 1]! - issued[warmupN]!) / 1e9), missing, errors,
      endToEnd: pcts(e2e), ackToReceived: pcts(vis), write: pcts(write), issueLag: pcts(lag), cpu, followerPct, bookiesPct, requestsPerSec, segments,
      journal: {batchesPerSec: jd.batches / span, recordsPerBatch: jd.recordsPerBatch, syncUsAvg: jd.syncUsAvg},
      rolls: {count: rollMs.length, p50Ms: median(rollMs), maxMs: Math.max(0, ...rollMs)},
    }
  } finally {
    logChannels.roll.unsubscribe(onRoll)
    await lg.close().catch(() => undefined)
  }
}

/** --writer-prof: V8's sampling profiler on this process (node:inspector), from the warm-up's end to the last ack. */
async function startProfile(): Promise<Session> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return session
}

async function stopProfile(session: Session, file: string): Promise<void> {
  const {profile} = await session.post('Profiler.stop')
  writeFileSync(file, JSON.stringify(profile))
  session.disconnect()
}

/**
 * --timeline: one line per 100 ms of intended send time after the warm-up (appended to FILE, one block per
 * rate): entries due, the worst ack -> received and the worst intended send -> acknowledged. Tells a few
 * long stalls from latency spread evenly.
 */
function writeTimeline(file: string, rate: number, from: number, total: number, due: (i: number) => bigint, ack: BigInt64Array, recv: BigInt64Array): void {
  const wall = Date.now() - Number(process.hrtime.bigint() - due(from)) / 1e6
  const lines = [`# rate ${rate}/s: window (ms after the warm-up, which ended at ${new Date(wall).toISOString()}; negative: in the warm-up), entries, worst ack->recv ms, worst write ms`]
  let k: number | undefined
  let n = 0
  let vis = 0
  let w = 0
  const flush = (): void => { if (k !== undefined) lines.push(`${k * 100} ${n} ${vis.toFixed(2)} ${w.toFixed(2)}`) }
  for (let i = 0; i < total; i++) {
    const at = Math.floor(Number(due(i) - due(from)) / 1e8)
    if (at !== k) {
      flush()
      k = at
      n = vis = w = 0
    }
    n++
    const a = ack[i]!
    const r = recv[i]!
    if (a > 0n && r > 0n) vis = Math.max(vis, Number(r - a) / 1e6)
    if (a > 0n) w = Math.max(w, Number(a - due(i)) / 1e6)
  }
  flush()
  appendFileSync(file, lines.join('\n') + '\n')
}

// ---- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const {root, mount} = pickDir('logctl-bench-log-', flags.dir)
  const cleanup = (): void => { rmSync(root, {recursive: true, force: true}) }
  process.once('SIGINT', () => { cleanup(); process.exit(130) })
  const started = performance.now()
  let waitedMs = 0
  let ownPids: () => number[] = () => []
  const step = async (): Promise<void> => { waitedMs += await settle(CFG.waitQuiet, ownPids) }
  const results: Record<string, unknown> = {}
  let bookies: Bookies | undefined
  let client: LogctlClient | undefined
  let closeFollower: () => void = () => undefined
  try {
    const machine = machineInfo(mount)
    results.machine = {...machine, dataDir: root}
    results.config = CFG
    const q = CFG.quorum
    const qs = `E${q.ensembleSize} Qw${q.writeQuorum} Qa${q.ackQuorum}`
    say(`# logctl named-log benchmark${QUICK ? ' (--quick)' : ''}`)
    say(machineLine(machine, root))
    if (CFG.waitQuiet > 0) say(`--wait-quiet ${CFG.waitQuiet}: before each step, waited (at most ${CFG.waitQuiet} s) for the rest of the machine to go quiet`)
    if (CFG.retryNoisy > 0) say(`--retry-noisy ${CFG.retryNoisy}: a cell during which the rest of the machine used > ${CFG.noisyPct}% of a core was run again (up to ${CFG.retryNoisy} more times); 'tries' counts the attempts`)
    if (Object.keys(CFG.writer).length) say(`NOTE: diagnostic run with LedgerWriter options ${JSON.stringify(CFG.writer)} (not the defaults)`)
    for (const note of bookieFlagNotes(CFG.bookieOpts)) say(note)
    say(`${CFG.bookies} bookie daemon(s), ${qs}; 1 KiB payloads; throughput cells: closed loop at ${CFG.inFlight} in flight, ${CFG.cellSeconds} s or ${fmtInt(CFG.maxEntries)} entries after a ${CFG.warmupSeconds} s warm-up, ${CFG.rounds} ABBA round(s); segment bytes ${fmtInt(CFG.segmentBytes)}`)
    if (CFG.follower === 'child') say(`follower process: node ${[...process.execArgv, ...CFG.followerNodeArgs].join(' ') || '(no flags)'} (--follower-node-args; the default is what the README advises applications); one process for every tail run, warmed up by an unmeasured run at half the highest rate`)

    log(`starting ${CFG.bookies} bookie(s) ...`)
    bookies = await Bookies.start({dir: join(root, 'cluster'), count: CFG.bookies, ...CFG.bookieOpts})
    const b = bookies
    ownPids = () => b.pids()
    client = await LogctlClient.connect({metadata: bookies.metadataUrl, bookieTimeoutMs: CFG.bookieTimeoutMs, writer: CFG.writer})
    const c = client
    // A long warm-up: the first seconds of writes on a fresh cluster run measurably faster (the disk slows
    // down as a run goes on; cluster.ts's drift check shows it), which favoured whichever cell came first.
    // Half of it on a log: with a ledger only, the first log cell ran the log layer's code cold.
    await warmUp(c, q, {seconds: QUICK ? 0.5 : 6, size: CFG.size, inFlight: CFG.inFlight, log: true})

    // ---- 1. throughput --------------------------------------------------------------------------------
    const cells: AppendCellResult[] = []
    const ratios: number[] = []
    const summary = (r: AppendCellResult): unknown => ({entriesPerSec: r.entriesPerSec, p99: r.us.p99, restPct: r.cpu.restPct})
    for (let round = 1; round <= CFG.rounds; round++) {
      const order: Array<'ledger' | 'log'> = round % 2 === 1 ? ['ledger', 'log'] : ['log', 'ledger']
      const pair: Partial<Record<'ledger' | 'log', AppendCellResult>> = {}
      for (const kind of order) {
        log(`round ${round}: ${kind} @ ${CFG.inFlight} ...`)
        const opts = {...q, label: `round ${round}`, size: CFG.size, inFlight: CFG.inFlight, seconds: CFG.cellSeconds, warmupSeconds: CFG.warmupSeconds, maxEntries: CFG.maxEntries}
        const r = await retryNoisy(CFG.retryNoisy, CFG.noisyPct, async () => {
          await step()
          return kind === 'ledger' ? ledgerCell(c, b, opts) : logCell(c, b, {...opts, segmentBytes: CFG.segmentBytes})
        }, summary)
        pair[kind] = r
        cells.push(r)
      }
      ratios.push(pair.log!.entriesPerSec / pair.ledger!.entriesPerSec)
    }
    results.throughput = {cells, ratios}
    const ratio = median(ratios)
    const logMax = median(cells.filter(x => x.kind === 'log').map(x => x.entriesPerSec))

    // ---- 2. tail latency ------------------------------------------------------------------------------
    const plan: Array<{rate: number; fraction: number | undefined}> = CFG.rates
      ? CFG.rates.map(rate => ({rate, fraction: undefined}))
      : CFG.rateFractions.map(f => ({rate: Math.max(100, Math.round(logMax * f)), fraction: f}))
    const tails: Array<TailResult & {fraction: number | undefined}> = []
    log(`starting the follower${CFG.follower === 'child' ? ' process' : ''} ...`)
    const follower = await startFollower(c, b.metadataUrl)
    closeFollower = follower.close
    // One follower for every run, warmed up first by an unmeasured run: the steady state of a long-lived
    // consumer is what the target is about, not a process's first second of compiling.
    const warmRate = Math.max(100, Math.round(Math.max(...plan.map(x => x.rate)) / 2))
    log(`follower warm-up: an unmeasured tail run at ${fmtInt(warmRate)} entries/s ...`)
    await tailRun(c, b, follower, warmRate, QUICK ? 0.5 : 2, 0.5)
    results.followerWarmUp = {rate: warmRate, seconds: QUICK ? 1 : 2.5}
    for (const {rate, fraction} of plan) {
      log(`tail latency at ${fmtInt(rate)} entries/s (${CFG.follower} follower) ...`)
      const t = await retryNoisy(CFG.retryNoisy, CFG.noisyPct, async () => {
        await step()
        return tailRun(c, b, follower, rate)
      }, r => ({p99: r.endToEnd.p99, restPct: r.cpu.restPct}))
      tails.push({...t, fraction})
    }
    results.tail = tails

    // ---- report ---------------------------------------------------------------------------------------
    say()
    say(`## Throughput: log.append vs a bare ledger's append (${qs}, 1 KiB, ${CFG.inFlight} in flight)`)
    table(say, ['round', 'target', 'entries/s', 'MB/s', 'p50', 'p99', 'p99.9', 'max', 'rec/batch', 'sync avg', 'client', 'main thr', 'bookies', 'bookie main', 'client µs/e', 'bookies µs/e', 'rest', 'segments', 'tries'],
      cells.map(x => [x.label, x.kind, fmtInt(x.entriesPerSec), fmt1(x.mbPerSec), fmtUs(x.us.p50), fmtUs(x.us.p99), fmtUs(x.us.p999), fmtUs(x.us.max), fmt1(x.journal.recordsPerBatch), fmtUs(x.journal.syncUsAvg),
        fmtPct(x.cpu.selfPct), fmtPct(x.cpu.mainPct), fmtPct(x.cpu.childPct), fmtPct(x.cpu.childMainMaxPct), fmt1((x.cpu.selfPct / 100) * 1e6 / x.entriesPerSec), fmt1((x.cpu.childPct / 100) * 1e6 / x.entriesPerSec), fmtPct(x.cpu.restPct), x.segments === undefined ? '' : String(x.segments), String(x.attempts ?? 1)]))
    say(`(client = this process, main thr = its main thread, bookies = the daemons, bookie main = the busiest bookie's main thread, µs/e = CPU µs per entry, rest = everything else on the machine; % of one core, of 200%. rec/batch, sync avg: journal group commits summed over bookies)`)
    for (const x of cells) say(`requests answered by the bookies, ${x.label} ${x.kind}: ${Object.entries(x.requests).map(([k, v]) => `${k} ${fmtInt(v / x.seconds)}/s`).join(', ')} (${fmt1(x.entries * q.writeQuorum / Math.max(1, x.requests['add'] ?? 0))} entries per add request)`)
    say(`log / ledger per round: ${ratios.map(x => x.toFixed(3)).join(', ')}; median ${ratio.toFixed(3)}  (target >= 0.90)  ${verdict(ratio >= 0.9)}`)

    say()
    say(`## Tail latency: a writer at a fixed rate, a follower in ${CFG.follower === 'child' ? 'another process' : 'this process'} (log ${qs}, 1 KiB)`)
    say(`latency per entry, after a ${CFG.tailWarmupSeconds} s warm-up, over ${CFG.tailSeconds} s: e2e = intended send -> follower received; ack->recv = append acknowledged -> follower received (the issue's figure: "append acknowledged -> a follower has it"); write = intended send -> acknowledged; lag = intended send -> append() called (the 1 ms scheduler's own delay, part of e2e and write)`)
    const head = ['rate', 'x max', 'achieved', 'e2e p50', 'e2e p99', 'e2e p99.9', 'e2e max', 'ack->recv p50', 'ack->recv p99', 'write p50', 'write p99', 'lag p99', 'writer', 'bookies', 'follower', 'rest', 'missing', 'tries']
    table(say, head, tails.map(t => [fmtInt(t.rate), t.fraction === undefined ? '' : fmt2(t.fraction), fmtInt(t.achievedRate), fmtUs(t.endToEnd.p50), fmtUs(t.endToEnd.p99), fmtUs(t.endToEnd.p999), fmtUs(t.endToEnd.max),
      fmtUs(t.ackToReceived.p50), fmtUs(t.ackToReceived.p99), fmtUs(t.write.p50), fmtUs(t.write.p99), fmtUs(t.issueLag.p99),
      fmtPct(t.cpu.selfPct), fmtPct(t.bookiesPct), CFG.follower === 'child' ? fmtPct(t.followerPct) : '(in writer)', fmtPct(t.cpu.restPct), String(t.missing + t.errors), String(t.attempts ?? 1)]))
    say(`(writer = this process, bookies = the daemons, follower = the follower process; % of one core, of 200%. missing = entries the follower never got + append errors)`)
    for (const t of tails) say(`requests/s answered by the bookies at ${fmtInt(t.rate)}/s (all bookies): ${Object.entries(t.requestsPerSec).map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ')}; journal group commits ${fmtInt(t.journal.batchesPerSec)}/s of ${fmt1(t.journal.recordsPerBatch)} records, fdatasync avg ${fmtUs(t.journal.syncUsAvg)}`)
    for (const t of tails) if (t.rolls.count > 0) say(`segment rolls at ${fmtInt(t.rate)}/s: ${t.rolls.count} (warm-up included; appends wait for each): p50 ${fmt2(t.rolls.p50Ms)} ms, max ${fmt2(t.rolls.maxMs)} ms`)
    const half = tails.find(t => t.fraction === 0.5) ?? (CFG.rates ? undefined : tails.at(-1))
    if (half) {
      say(`at ${fmtInt(half.rate)} entries/s (half of the log's ${fmtInt(logMax)}/s): acknowledged -> received p99 ${fmtUs(half.ackToReceived.p99)}  (target < 10 ms)  ${verdict(half.ackToReceived.p99 < 10_000 && half.missing + half.errors === 0)}; end to end (intended send -> received, the writer's own latency included) p99 ${fmtUs(half.endToEnd.p99)}`)
    }

    const total = (performance.now() - started) / 1000
    results.totalSeconds = total
    results.waitedQuietSeconds = waitedMs / 1000
    say()
    say(`total ${total.toFixed(0)} s${CFG.waitQuiet > 0 ? ` (of which ${(waitedMs / 1000).toFixed(0)} s waiting for quiet)` : ''}; client process peak RSS ${fmtInt(process.resourceUsage().maxRSS / 1024)} MiB; load avg at end ${loadLine()}`)
    if (flags.json) process.stdout.write(toJson(results) + '\n')
  } finally {
    closeFollower()
    await client?.close().catch(() => undefined)
    await bookies?.stop().catch(() => undefined)
    cleanup()
  }
}

if (flags['follower-child']) {
  followerChild().catch(err => {
    console.error(err)
    process.exit(1)
  })
} else {
  main().catch(err => {
    console.error(err)
    process.exitCode = 1
  })
}
