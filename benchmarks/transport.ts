/**
 * Transport benchmark: durable batched adds to a real bookie (StorageEngine + BookieServer in a child
 * process, fresh data directory per cell) through the two BookieClient transports, node:http2 and undici's
 * H2CClient, against the same adds made in-process (engine.addBatch, no network) as the baseline of the run.
 *
 *   npx tsc -b && node dist/benchmarks/transport.js [--quick] [--json] [--seconds S] [--rounds R]
 *        [--concurrency 1,8,32] [--batches 64x1024,16x65536] [--max-requests N] [--no-inproc]
 *        [--undici-inflight BYTES]   (undici's in-flight body cap; default the client's, 6 MiB)
 *
 * Each cell is a closed loop: `concurrency` workers on one client object, each sending a batch and sending
 * the next when its answer comes. Bounded by --seconds (default 2, after a 0.3 s warm-up) and --max-requests
 * (default 50000) per cell. Rounds (default 3) interleave the transports, alternating their order; the
 * table shows the median of the rounds. entries/s and MB/s count payload bytes acknowledged (fdatasync'd);
 * p50/p99 are per request (one batch), in ms. Ratios: each transport against in-process, and undici
 * against node:http2, per round, then the median.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {entryDigest} from '../src/checksum.js'
import {StorageEngine} from '../src/engine/engine.js'
import {connectBookie, type AddFrame} from '../src/net/bookie-client.js'
import {BookieServer} from '../src/net/server.js'
import type {TransportName} from '../src/net/transport.js'

const {values: flags} = parseArgs({
  options: {
    serve: {type: 'string'},
    quick: {type: 'boolean', default: false},
    json: {type: 'boolean', default: false},
    seconds: {type: 'string'},
    rounds: {type: 'string'},
    concurrency: {type: 'string'},
    batches: {type: 'string'},
    'max-requests': {type: 'string'},
    'no-inproc': {type: 'boolean', default: false},
    'undici-inflight': {type: 'string'},
  },
})

const ENGINE_OPTS = {compactIntervalMs: 0}

// ---- child: one bookie ----------------------------------------------------------------------------

async function serve(dir: string): Promise<void> {
  const engine = await StorageEngine.open({...ENGINE_OPTS, dir})
  const server = await BookieServer.listen({engine})
  process.stdout.write(`${JSON.stringify({port: server.port})}\n`)
  process.stdin.resume()
  process.stdin.once('end', () => {
    void server.close().then(() => engine.close()).then(() => process.exit(0))
  })
}

// ---- parent ----------------------------------------------------------------------------------------

interface Batch { count: number; size: number; label: string }
type Mode = TransportName | 'inproc'
interface Cell { requests: number; seconds: number; entriesPerSec: number; mbPerSec: number; p50: number; p99: number }

const QUICK = flags.quick === true
const CFG = {
  seconds: Number(flags.seconds ?? (QUICK ? 1 : 2)),
  warmup: 0.3,
  rounds: Number(flags.rounds ?? (QUICK ? 1 : 3)),
  concurrency: (flags.concurrency ?? (QUICK ? '1,16' : '1,8,32')).split(',').map(Number),
  batches: (flags.batches ?? '64x1024,16x65536').split(',').map((s): Batch => {
    const [count, size] = s.split('x').map(Number) as [number, number]
    return {count, size, label: `${count} x ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`}`}
  }),
  maxRequests: Number(flags['max-requests'] ?? 50_000),
  inproc: !flags['no-inproc'],
  undiciInflight: flags['undici-inflight'] === undefined ? undefined : Number(flags['undici-inflight']),
}

const SELF = fileURLToPath(import.meta.url)
const payloadPool = randomBytes(1024 * 1024) // incompressible

function frames(b: Batch, ledgerId: bigint, first: bigint): AddFrame[] {
  return Array.from({length: b.count}, (_, i) => {
    const entryId = first + BigInt(i)
    const off = (Number(entryId) * 4099) % (payloadPool.length - b.size)
    const payload = payloadPool.subarray(off, off + b.size)
    const lac = entryId - 1n
    return {ledgerId, entryId, lac, payload, digest: entryDigest(ledgerId, entryId, lac, payload)}
  })
}

async function startBookie(dir: string): Promise<{child: ChildProcess; address: string}> {
  const child = spawn(process.execPath, [SELF, '--serve', dir], {stdio: ['pipe', 'pipe', 'inherit']})
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({input: child.stdout!}).once('line', resolve)
    child.once('exit', code => reject(new Error(`bookie child exited (${code})`)))
  })
  return {child, address: `127.0.0.1:${(JSON.parse(line) as {port: number}).port}`}
}

async function stopBookie(child: ChildProcess): Promise<void> {
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.stdin!.end()
  await exited
}

/** Closed loop for warmup + seconds; `send(ledger, first)` makes one batch request. */
async function loop(b: Batch, concurrency: number, send: (frames: AddFrame[]) => Promise<void>): Promise<Cell> {
  const latencies: number[] = []
  let requests = 0
  let measuring = false
  const t0 = performance.now()
  const warmEnd = t0 + CFG.warmup * 1000
  const end = warmEnd + CFG.seconds * 1000
  let measureStart = warmEnd
  const worker = async (w: number): Promise<void> => {
    const ledgerId = BigInt(w + 1)
    let next = 0n
    for (;;) {
      const now = performance.now()
      if (now >= end || requests >= CFG.maxRequests) return
      if (!measuring && now >= warmEnd) {
        measuring = true
        measureStart = now
      }
      const batch = frames(b, ledgerId, next)
      next += BigInt(b.count)
      const s = performance.now()
      await send(batch)
      if (measuring) {
        latencies.push(performance.now() - s)
        requests++
      }
    }
  }
  await Promise.all(Array.from({length: concurrency}, (_, w) => worker(w)))
  const seconds = (performance.now() - measureStart) / 1000
  latencies.sort((x, y) => x - y)
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN
  const entries = requests * b.count
  return {requests, seconds, entriesPerSec: entries / seconds, mbPerSec: (entries * b.size) / seconds / 1e6, p50: pct(0.5), p99: pct(0.99)}
}

async function runCell(mode: Mode, b: Batch, concurrency: number): Promise<Cell> {
  const dir = mkdtempSync(join(tmpdir(), 'logctl-bench-transport-'))
  try {
    if (mode === 'inproc') {
      const engine = await StorageEngine.open({...ENGINE_OPTS, dir})
      try {
        return await loop(b, concurrency, async fs => {
          const r = await engine.addBatch(fs)
          if (r.some(e => e !== undefined)) throw new Error(`add failed: ${r.find(e => e !== undefined)?.message}`)
        })
      } finally {
        await engine.close()
      }
    }
    const {child, address} = await startBookie(dir)
    const client = connectBookie(address, mode === 'undici' && CFG.undiciInflight !== undefined
      ? {transport: mode, timeoutMs: 30_000, maxInflightBytes: CFG.undiciInflight}
      : {transport: mode, timeoutMs: 30_000})
    try {
      return await loop(b, concurrency, async fs => {
        const r = await client.addEntries(fs)
        const bad = r.find(x => !x.ok)
        if (bad !== undefined && !bad.ok) throw bad.error
      })
    } finally {
      await client.close()
      await stopBookie(child)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function main(): Promise<void> {
  const machine = `${cpus()[0]?.model ?? '?'} x${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
    `tmpdir ${tmpdir()}, load ${loadavg().map(l => l.toFixed(2)).join(' ')}, ${new Date().toISOString()}`
  if (!flags.json) console.log(`machine: ${machine}\nconfig: ${JSON.stringify(CFG)}\n`)
  const modes: Mode[] = [...(CFG.inproc ? ['inproc' as const] : []), 'http2', 'undici']
  const results: Array<{batch: string; concurrency: number; mode: Mode; rounds: Cell[]}> = []
  const header = `${'batch'.padEnd(12)} ${'conc'.padStart(4)} ${'transport'.padEnd(9)} ${'entries/s'.padStart(10)} ${'MB/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  ratios (median of rounds)`
  if (!flags.json) console.log(header)
  for (const b of CFG.batches) {
    for (const c of CFG.concurrency) {
      const cells = new Map<Mode, Cell[]>(modes.map(m => [m, []]))
      for (let r = 0; r < CFG.rounds; r++) {
        const order = r % 2 === 0 ? modes : [...modes].reverse()
        for (const m of order) cells.get(m)!.push(await runCell(m, b, c))
      }
      const ratio = (a: Mode, base: Mode): number => median(cells.get(a)!.map((x, i) => x.entriesPerSec / cells.get(base)![i]!.entriesPerSec))
      for (const m of modes) {
        const rs = cells.get(m)!
        results.push({batch: b.label, concurrency: c, mode: m, rounds: rs})
        if (flags.json) continue
        const notes = m === 'inproc' ? 'baseline' : [
          CFG.inproc ? `${ratio(m, 'inproc').toFixed(2)} of in-process` : '',
          m === 'undici' ? `${ratio('undici', 'http2').toFixed(2)} of node:http2` : '',
        ].filter(Boolean).join(', ')
        console.log(`${b.label.padEnd(12)} ${String(c).padStart(4)} ${m.padEnd(9)} ${Math.round(median(rs.map(x => x.entriesPerSec))).toString().padStart(10)} ` +
          `${median(rs.map(x => x.mbPerSec)).toFixed(1).padStart(8)} ${median(rs.map(x => x.p50)).toFixed(2).padStart(8)} ${median(rs.map(x => x.p99)).toFixed(2).padStart(8)}  ${notes}`)
      }
    }
  }
  if (flags.json) console.log(JSON.stringify({machine, config: CFG, results}, null, 2))
}

if (flags.serve !== undefined) await serve(flags.serve)
else await main()
