/**
 * Bookie daemons for benchmarks (no tap): each bookie is `node bin/run.js daemon` in a child process on
 * 127.0.0.1 (port 0), with its own data directory under `dir`, all registered in one SQLite metadata store
 * (sqlite:<dir>/meta.db unless given). Start-up waits for each daemon's ready line (a JSON log line with
 * "event":"ready"), as test/helpers/cluster.ts does. stop() sends SIGTERM (a clean stop: in-flight adds
 * finish, final checkpoint, deregistration) and SIGKILLs after a timeout. Daemons still alive when this
 * process exits are SIGKILLed (by their own pid). Build first (`npx tsc -b`): the daemons run the compiled CLI.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createWriteStream, mkdirSync} from 'node:fs'
import http2 from 'node:http2'
import {basename, join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import {connectBookie, type BookieClient} from '../../src/net/bookie-client.js'
import type {JournalStats} from '../../src/engine/journal.js'
import {DAEMON_NODE_FLAGS} from '../../src/server/node-flags.js'

/** dist/benchmarks/lib/bookies.js -> <repo>/bin/run.js */
const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const DIAG_JS = fileURLToPath(new URL('./bookie-daemon.js', import.meta.url))
const KEEP_LINES = 200

const live = new Set<ChildProcess>()
let exitHookInstalled = false
function track(child: ChildProcess): void {
  live.add(child)
  child.once('close', () => live.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL')
    })
  }
}

export interface BookieProc {
  index: number
  dataDir: string
  child: ChildProcess
  pid: number
  id: string
  address: string
  lines: string[]
  closed: Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

export interface StartOptions {
  /** Directory for the data dirs (and the metadata db unless `metadata` is given). */
  dir: string
  count: number
  metadata?: string
  /** Node flags for the daemons after DAEMON_NODE_FLAGS (a later flag wins: --no-single-threaded-gc undoes it), e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[]
  /** Extra `logctl daemon` arguments. */
  daemonArgs?: string[]
  readyTimeoutMs?: number
  /** Diagnostics: engine / server options the CLI does not expose; the daemons then run lib/bookie-daemon.js. */
  engine?: Record<string, unknown>
  server?: Record<string, unknown>
  /**
   * Diagnostics: also write each daemon's stdout (its JSON log, and what V8 prints for flags like
   * --trace-gc) to <logDir>/<basename(dir)>-bookie-<i>.log, appended.
   */
  logDir?: string
}

/** Flags of the benchmarks that start bookies (cluster.ts, log.ts), for parseArgs. */
export const BOOKIE_FLAGS = {
  'bookie-node-args': {type: 'string'},
  'bookie-engine': {type: 'string'},
  'bookie-log': {type: 'string'},
} as const

/** Node flags given as one string ("--a --b=1") as a list. */
export function splitNodeArgs(s: string | undefined): string[] {
  return (s ?? '').split(/\s+/).filter(Boolean)
}

export type BookieFlagOptions = Pick<StartOptions, 'nodeArgs' | 'engine' | 'logDir'>

/**
 * BOOKIE_FLAGS as start options: --bookie-node-args="--cpu-prof ..." (Node flags, after DAEMON_NODE_FLAGS),
 * --bookie-engine '{"verifyOffloadBytes":1073741824}' (engine options, via lib/bookie-daemon.ts), --bookie-log
 * DIR (each daemon's stdout to a file there).
 */
export function bookieFlagOptions(flags: {'bookie-node-args'?: string | undefined; 'bookie-engine'?: string | undefined; 'bookie-log'?: string | undefined}): BookieFlagOptions {
  const o: BookieFlagOptions = {nodeArgs: splitNodeArgs(flags['bookie-node-args'])}
  if (flags['bookie-engine'] !== undefined) o.engine = JSON.parse(flags['bookie-engine']) as Record<string, unknown>
  if (flags['bookie-log'] !== undefined) o.logDir = flags['bookie-log']
  return o
}

/** What a benchmark's output says about diagnostic bookie options. */
export function bookieFlagNotes(o: BookieFlagOptions): string[] {
  const notes: string[] = []
  if (o.engine) notes.push(`NOTE: diagnostic run: bookies run benchmarks/lib/bookie-daemon.js with engine options ${JSON.stringify(o.engine)}`)
  if (o.nodeArgs?.length) notes.push(`NOTE: bookies run with Node flags ${o.nodeArgs.join(' ')}`)
  if (o.logDir !== undefined) notes.push(`NOTE: each bookie's stdout is also written to ${o.logDir}`)
  return notes
}

export class Bookies {
  private constructor(readonly metadataUrl: string, readonly procs: BookieProc[]) {}

  static async start(o: StartOptions): Promise<Bookies> {
    mkdirSync(o.dir, {recursive: true})
    const metadataUrl = o.metadata ?? `sqlite:${join(o.dir, 'meta.db')}`
    const procs: BookieProc[] = []
    try {
      // One at a time: the first creates the SQLite schema; parallel starts would race on it.
      for (let i = 0; i < o.count; i++) procs.push(await startOne(i, join(o.dir, `bookie-${i}`), metadataUrl, o))
    } catch (err) {
      await Promise.all(procs.map(p => stopOne(p, 5000)))
      throw err
    }
    return new Bookies(metadataUrl, procs)
  }

  pids(): number[] {
    return this.procs.map(p => p.pid)
  }

  addresses(): string[] {
    return this.procs.map(p => p.address)
  }

  /** Each bookie's journal counters (GET /v1/status), in order. */
  async journals(): Promise<JournalStats[]> {
    const clients: BookieClient[] = this.procs.map(p => connectBookie(p.address, {timeoutMs: 10_000}))
    try {
      return await Promise.all(clients.map(async c => (await c.status())['journal'] as JournalStats))
    } finally {
      await Promise.all(clients.map(c => c.close().catch(() => undefined)))
    }
  }

  /**
   * Requests answered so far, by route, summed over bookies: the `_count` samples of the daemons'
   * logctl_bookie_request_seconds histogram (GET /metrics). The scrape itself counts as one 'metrics'.
   */
  async requestCounts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {}
    for (const p of this.procs) {
      const text = await scrape(p.address, '/metrics')
      for (const m of text.matchAll(/^logctl_bookie_request_seconds_count\{([^}]*)\} (\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/gm)) {
        const route = /route="([^"]*)"/.exec(m[1]!)?.[1] ?? '?'
        out[route] = (out[route] ?? 0) + Number(m[2])
      }
    }
    return out
  }

  /** SIGTERM all, wait (at most timeoutMs, then SIGKILL). */
  async stop(timeoutMs = 15_000): Promise<void> {
    await Promise.all(this.procs.map(p => stopOne(p, timeoutMs)))
  }
}

function scrape(address: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://${address}`)
    s.once('error', reject)
    const req = s.request({':method': 'GET', ':path': path})
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => { body += d })
    req.once('end', () => {
      s.close()
      resolve(body)
    })
    req.once('error', err => {
      s.destroy()
      reject(err)
    })
    req.end()
  })
}

/** Requests per route between two requestCounts() (without the scrapes themselves). */
export function requestDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) {
    if (k === 'metrics' || k === 'status') continue
    const d = v - (before[k] ?? 0)
    if (d > 0) out[k] = d
  }
  return out
}

async function stopOne(p: BookieProc, timeoutMs: number): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  await p.closed
  clearTimeout(timer)
}

function startOne(index: number, dataDir: string, metadataUrl: string, o: StartOptions): Promise<BookieProc> {
  const diag = o.engine !== undefined || o.server !== undefined
  const args = diag
    ? [...DAEMON_NODE_FLAGS, ...(o.nodeArgs ?? []), DIAG_JS, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--metadata', metadataUrl,
      ...(o.engine ? ['--engine', JSON.stringify(o.engine)] : []), ...(o.server ? ['--server', JSON.stringify(o.server)] : [])]
    : [...DAEMON_NODE_FLAGS, ...(o.nodeArgs ?? []), RUN_JS, 'daemon', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--metadata', metadataUrl, ...(o.daemonArgs ?? [])]
  const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'inherit']})
  track(child)
  let logFile: ReturnType<typeof createWriteStream> | undefined
  if (o.logDir !== undefined) {
    mkdirSync(o.logDir, {recursive: true})
    logFile = createWriteStream(join(o.logDir, `${basename(o.dir)}-bookie-${index}.log`), {flags: 'a'})
    child.once('close', () => logFile!.end())
  }
  const lines: string[] = []
  const closed = new Promise<{code: number | null; signal: NodeJS.Signals | null}>(resolve => {
    child.once('close', (code, signal) => resolve({code, signal}))
  })
  return new Promise<BookieProc>((resolve, reject) => {
    const timeoutMs = o.readyTimeoutMs ?? 30_000
    let ready = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`bookie ${index} printed no ready line within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`))
    }, timeoutMs)
    // Keep reading stdout to the end (a full pipe would block the daemon).
    createInterface({input: child.stdout!}).on('line', line => {
      logFile?.write(line + '\n')
      lines.push(line)
      if (lines.length > KEEP_LINES) lines.shift()
      if (ready || !line.includes('"ready"')) return
      let msg: Record<string, unknown>
      try {
        msg = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      if (msg['event'] !== 'ready') return
      ready = true
      clearTimeout(timer)
      resolve({index, dataDir, child, pid: child.pid!, id: String(msg['bookieId']), address: String(msg['address']), lines, closed})
    })
    void closed.then(e => {
      clearTimeout(timer)
      if (!ready) reject(new Error(`bookie ${index} exited (${e.code ?? e.signal}) before it was ready:\n${lines.slice(-20).join('\n')}`))
    })
  })
}

/** Sum of journal counter deltas over bookies: records per batch and mean fdatasync per batch. */
export function journalDelta(before: JournalStats[], after: JournalStats[]): {batches: number; records: number; recordsPerBatch: number; syncUsAvg: number} {
  let batches = 0
  let records = 0
  let sync = 0
  after.forEach((a, i) => {
    const b = before[i]!
    batches += a.batches - b.batches
    records += a.records - b.records
    sync += a.syncMicrosTotal - b.syncMicrosTotal
  })
  return {batches, records, recordsPerBatch: records / Math.max(1, batches), syncUsAvg: sync / Math.max(1, batches)}
}
