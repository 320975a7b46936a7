/**
 * Shared by the benchmarks in benchmarks/ (cluster.ts, log.ts): the machine line, where to put data files,
 * CPU accounting (this process, its children, everything else on the machine), waiting for a quiet machine,
 * hdr-histogram helpers and table formatting. Extracted from benchmarks/engine.ts (same definitions, so the
 * figures compare); engine.ts keeps its own copy for now.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, realpathSync} from 'node:fs'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import hdr, {type Histogram} from 'hdr-histogram-js'

export const log = (s: string): void => { process.stderr.write(s + '\n') }

/** The readable report goes to stdout unless --json (then stdout carries only the JSON). */
export function reporter(json: boolean): (s?: string) => void {
  return (s = '') => { if (!json) process.stdout.write(s + '\n') }
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

// ---- where the data goes, and what it sits on ----------------------------------------------------------

export interface MountInfo { mountPoint: string; fsType: string; source: string; options: string; superOptions: string }

/** The mount holding `path` (longest mount-point prefix in /proc/self/mountinfo). */
export function mountOf(path: string): MountInfo | undefined {
  let best: MountInfo | undefined
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ')
      if (!pre || !post) continue
      const f = pre.split(' ')
      const g = post.split(' ')
      const mp = f[4]!.replace(/\\040/g, ' ')
      const inside = path === mp || path.startsWith(mp.endsWith('/') ? mp : mp + '/')
      if (inside && (!best || mp.length >= best.mountPoint.length)) best = {mountPoint: mp, fsType: g[0]!, source: g[1]!, options: f[5]!, superOptions: g[2] ?? ''}
    }
  } catch {
    // not Linux: reported as unknown
  }
  return best
}

function sysBlock(source: string, attr: string): string | undefined {
  const name = source.replace(/^\/dev\//, '')
  for (const dev of [name, name.replace(/p?\d+$/, '')]) {
    try {
      return readFileSync(`/sys/block/${dev}/queue/${attr}`, 'utf8').trim()
    } catch {
      // a partition: try the whole disk
    }
  }
  return undefined
}

export const RAM_FS = new Set(['tmpfs', 'ramfs', 'devtmpfs'])

/**
 * A fresh directory for this run under `dir` (default os.tmpdir()); if tmpdir is a RAM file system it moves
 * under the current directory, since fdatasync on tmpfs measures nothing. The caller removes it.
 */
export function pickDir(prefix: string, dir: string | undefined): {base: string; root: string; mount: MountInfo | undefined} {
  const parent = dir ?? tmpdir()
  mkdirSync(parent, {recursive: true})
  let mount = mountOf(realpathSync(parent))
  let where = parent
  if (dir === undefined && mount && RAM_FS.has(mount.fsType)) {
    log(`${parent} is on ${mount.fsType}: fdatasync there measures nothing; using the current directory instead`)
    where = process.cwd()
    mount = mountOf(realpathSync(where))
  }
  const root = mkdtempSync(join(where, prefix))
  return {base: where, root, mount}
}

export type Machine = Record<string, string | number>

export function machineInfo(mount: MountInfo | undefined): Machine {
  const c = cpus()
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    device: mount?.source ?? 'unknown',
    fs: mount ? `${mount.fsType} on ${mount.mountPoint} (${mount.options}; ${mount.superOptions})` : 'unknown',
    writeCache: mount ? sysBlock(mount.source, 'write_cache') ?? 'unknown' : 'unknown',
    load: loadavg().map(x => x.toFixed(2)).join(' '),
    date: new Date().toISOString(),
  }
}

/** The same line benchmarks/engine.ts prints. */
export function machineLine(m: Machine, root: string): string {
  return `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}; data dir ${root} on ${m.device} (${m.fs}), device write cache: ${m.writeCache}; load avg ${m.load}; ${m.date}`
}

export const loadLine = (): string => loadavg().map(x => x.toFixed(2)).join(' ')

// ---- CPU accounting ------------------------------------------------------------------------------------

/** Machine-wide CPU ticks (all cores) from /proc/stat: [busy, total]; busy excludes idle and iowait. */
export function machineTicks(): [number, number] {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
    return [total - f[3]! - f[4]!, total]
  } catch {
    return [NaN, NaN]
  }
}

let clkTck: number | undefined
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], {encoding: 'utf8'})
    const n = Number(r.stdout?.trim())
    clkTck = Number.isFinite(n) && n > 0 ? n : 100
  }
  return clkTck
}

/**
 * /proc/<pid>/stat: [utime+stime, cutime+cstime] in seconds (all threads; c* = reaped children). With
 * `mainThread`, /proc/<pid>/task/<pid>/stat: the main thread alone.
 */
export function procCpuSeconds(pid: number | 'self', mainThread = false): [number, number] {
  try {
    const s = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ') // fields from 3 (state) on
    const t = ticksPerSecond()
    return [(Number(f[11]) + Number(f[12])) / t, (Number(f[13]) + Number(f[14])) / t]
  } catch {
    return [NaN, NaN]
  }
}

/** CPU ns of the main thread (Linux schedstat). */
export function mainThreadNs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return NaN
  }
}

export interface CpuShares {
  /** This process (all threads), % of one core. */
  selfPct: number
  /** This process's main thread alone. */
  mainPct: number
  /** The children named (bookies, redis, a follower) plus children reaped meanwhile. */
  childPct: number
  /** The busiest main thread among the children named (a bookie's event loop), % of one core. */
  childMainMaxPct: number
  /** Everything else on the machine (other engineers' processes, kernel threads), % of one core. */
  restPct: number
  /** The whole machine, % of one core (of cores x 100). */
  machinePct: number
}

/**
 * CPU over an interval: start() then stop() -> shares in % of one core. `pids` are this benchmark's
 * children that live through the interval (read from /proc/<pid>/stat); children that exit meanwhile (e.g.
 * redis-benchmark) are counted through this process's cutime once reaped.
 */
export class CpuMeter {
  private t0 = 0
  private m0: [number, number] = [0, 0]
  private self0: NodeJS.CpuUsage = {user: 0, system: 0}
  private main0 = 0
  private kids0 = new Map<number, number>()
  private kidsMain0 = new Map<number, number>()
  private reaped0 = 0

  constructor(private readonly pids: () => number[]) {}

  start(): void {
    this.kids0 = new Map(this.pids().map(p => [p, procCpuSeconds(p)[0]]))
    this.kidsMain0 = new Map(this.pids().map(p => [p, procCpuSeconds(p, true)[0]]))
    this.reaped0 = procCpuSeconds('self')[1]
    this.self0 = process.cpuUsage()
    this.main0 = mainThreadNs()
    this.m0 = machineTicks()
    this.t0 = performance.now()
  }

  stop(): CpuShares {
    const m1 = machineTicks()
    const secs = (performance.now() - this.t0) / 1000
    const self = process.cpuUsage(this.self0)
    const main = mainThreadNs() - this.main0
    let kids = procCpuSeconds('self')[1] - this.reaped0
    for (const [pid, c0] of this.kids0) {
      const c1 = procCpuSeconds(pid)[0]
      if (Number.isFinite(c1)) kids += c1 - c0
    }
    let kidMainMax = 0
    for (const [pid, c0] of this.kidsMain0) {
      const c1 = procCpuSeconds(pid, true)[0]
      if (Number.isFinite(c1)) kidMainMax = Math.max(kidMainMax, c1 - c0)
    }
    const machinePct = ((m1[0] - this.m0[0]) / (m1[1] - this.m0[1])) * cpus().length * 100
    const selfPct = ((self.user + self.system) / 1e6 / secs) * 100
    const childPct = (kids / secs) * 100
    return {selfPct, mainPct: (main / 1e9 / secs) * 100, childPct, childMainMaxPct: (kidMainMax / secs) * 100, restPct: machinePct - selfPct - childPct, machinePct}
  }
}

/**
 * Before a step: push dirty pages and pending discards of the previous one out (`sync`, 200 ms), and with
 * waitQuietSec > 0 wait (bounded) until the rest of the machine uses < 20 % of one core over 500 ms.
 * Returns the ms spent waiting for quiet.
 */
export async function settle(waitQuietSec: number, ownPids: () => number[] = () => []): Promise<number> {
  spawnSync('sync', {stdio: 'ignore', timeout: 30_000})
  await sleep(200)
  if (waitQuietSec <= 0) return 0
  const t0 = performance.now()
  const until = t0 + waitQuietSec * 1000
  for (;;) {
    const meter = new CpuMeter(ownPids)
    meter.start()
    await sleep(500)
    const s = meter.stop()
    if (!(s.restPct >= 20) || performance.now() >= until) break
  }
  return performance.now() - t0
}

// ---- latency histograms ----------------------------------------------------------------------------------

const HIGHEST_US = 120_000_000

export function histogram(): Histogram {
  return hdr.build({lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3})
}

export function recordUs(h: Histogram, us: number): void {
  h.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(us))))
}

export interface Pcts { count: number; p50: number; p99: number; p999: number; max: number }

export function pcts(h: Histogram): Pcts {
  return {count: h.totalCount, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue}
}

// ---- formatting ------------------------------------------------------------------------------------------

export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
export const fmt1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
export const fmt2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
export const fmtPct = (n: number): string => (Number.isFinite(n) ? `${Math.round(n)}%` : 'n/a')
export const fmtUs = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n >= 10_000 ? `${(n / 1000).toFixed(1)} ms` : n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${Math.round(n)} µs`)
export const fmtSize = (n: number): string => (n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`)
export const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS')

export function table(say: (s?: string) => void, head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd()
  say(line(head))
  say(w.map(n => '-'.repeat(n)).join('  '))
  for (const r of rows) say(line(r))
}

export const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** JSON with bigints as strings. */
export const toJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x), 2)

/**
 * Run a measurement again, up to `retries` more times, while the rest of the machine used more than
 * `noisyPct` % of a core during it; keep the first quiet attempt, else the least disturbed. The choice
 * depends only on what the other processes did, never on the figures measured.
 */
export async function retryNoisy<T extends {cpu: CpuShares; attempts?: number; discarded?: unknown[]}>(retries: number, noisyPct: number, run: () => Promise<T>, summary: (r: T) => unknown): Promise<T> {
  const tries: T[] = []
  for (let i = 0; i <= retries; i++) {
    const r = await run()
    tries.push(r)
    if (!(r.cpu.restPct > noisyPct)) break
    if (i < retries) log(`  disturbed (rest ${Math.round(r.cpu.restPct)}% of a core), again`)
  }
  const kept = tries.find(r => !(r.cpu.restPct > noisyPct)) ?? tries.reduce((a, b) => (b.cpu.restPct < a.cpu.restPct ? b : a))
  kept.attempts = tries.length
  if (tries.length > 1) kept.discarded = tries.filter(r => r !== kept).map(summary)
  return kept
}

/** parseArgs options every benchmark takes: --quick, --json, --seconds S. */
export const BASE_FLAGS = {
  quick: {type: 'boolean', default: false},
  json: {type: 'boolean', default: false},
  seconds: {type: 'string'},
} as const

/** ... and those of the benchmarks that run timed cells on a data directory of this disk. */
export const CELL_FLAGS = {
  ...BASE_FLAGS,
  dir: {type: 'string'},
  'max-entries': {type: 'string'},
  'wait-quiet': {type: 'string'},
  'retry-noisy': {type: 'string'},
} as const
