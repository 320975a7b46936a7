/**
 * A cluster of real bookie daemons for tests: each bookie is `node <DAEMON_NODE_FLAGS> bin/run.js daemon` in a child process on
 * 127.0.0.1, with its own data directory under one temp directory, all registered in one SQLite metadata
 * store (or the store you pass). Start-up waits for each daemon's ready line (a JSON log line with
 * "event":"ready"), never for a fixed time.
 *
 *   const cluster = await Cluster.start(t, {bookies: 3})   // torn down with the test
 *   cluster.metadataUrl                                    // 'sqlite:/tmp/.../meta.db'
 *   cluster.addresses()                                    // ['127.0.0.1:41873', ...]
 *   const b = cluster.bookie(1)
 *   await b.kill()        // SIGKILL, resolves on exit
 *   await b.restart()     // same data dir and port; resolves when ready again
 *   b.pause() / b.resume()   // SIGSTOP / SIGCONT
 *   await b.stop()        // SIGTERM: resolves with the exit {code, signal}
 *   await cluster.add()   // one more bookie
 *
 * The daemons' stdout (pino JSON lines) is kept per bookie (b.lines, the last 500) for failure messages;
 * stderr goes to the test's stderr. At teardown every live daemon is resumed and SIGKILLed, and the temp
 * directory is removed. Build first (`npx tsc -b`): the daemons run the compiled CLI.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import {DAEMON_NODE_FLAGS} from '../../src/server/node-flags.js'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const KEEP_LINES = 500

export interface ClusterOptions {
  /** Bookies started at once (default 3). */
  bookies?: number
  /** Metadata store URL (default: sqlite:<cluster dir>/meta.db). */
  metadata?: string
  /** Extra `logctl daemon` arguments for every bookie (e.g. ['--log-level', 'debug']). */
  args?: string[]
  /** Extra environment for the daemons. */
  env?: Record<string, string>
  /** How long a daemon may take to print its ready line (default 30000 ms). */
  readyTimeoutMs?: number
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Daemons still running, killed when this process exits however it exits (a test that tap times out never
 * reaches its teardown: its daemons used to live on after the run).
 */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of live) {
    c.kill('SIGCONT') // a paused daemon acts on nothing else
    c.kill('SIGKILL')
  }
})

export type BookieState = 'starting' | 'running' | 'paused' | 'exited'

export class BookieProcess {
  /** Bound port: chosen by the first start (--listen 127.0.0.1:0), reused by every restart. */
  port = 0
  /** Bookie id and advertised address, from the ready line. */
  id = ''
  address = ''
  state: BookieState = 'exited'
  /** The daemon's stdout lines (pino JSON), the last KEEP_LINES of them, across restarts. */
  readonly lines: string[] = []
  private readonly watchers = new Set<(msg: Record<string, unknown>) => void>()
  private child: ChildProcess | undefined
  private exit: Promise<Exit> = Promise.resolve({code: null, signal: null})

  constructor(readonly index: number, readonly dataDir: string, private readonly cluster: {metadataUrl: string; opts: ClusterOptions}) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Resolves with the exit of the current (or last) process. */
  get exited(): Promise<Exit> {
    return this.exit
  }

  /** Spawn the daemon and wait for its ready line. Rejects (with its last log lines) if it exits first or is too slow. */
  async start(): Promise<void> {
    if (this.state !== 'exited') throw new Error(`bookie ${this.index} is ${this.state}`)
    const {opts, metadataUrl} = this.cluster
    const args = [...DAEMON_NODE_FLAGS, RUN_JS, 'daemon', '--data-dir', this.dataDir, '--listen', `127.0.0.1:${this.port}`, '--metadata', metadataUrl, ...(opts.args ?? [])]
    const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, ...opts.env}})
    this.child = child
    this.state = 'starting'
    live.add(child)
    this.exit = new Promise<Exit>(resolve => {
      // 'close', not 'exit': its stdout is read to the end by then, so no log line arrives after it.
      child.once('close', (code, signal) => {
        live.delete(child)
        if (this.child === child) this.state = 'exited'
        resolve({code, signal})
      })
    })
    const ready = new Promise<void>((resolve, reject) => {
      const timeoutMs = opts.readyTimeoutMs ?? 30_000
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`bookie ${this.index} printed no ready line within ${timeoutMs} ms:\n${this.tail()}`))
      }, timeoutMs)
      createInterface({input: child.stdout!}).on('line', line => {
        this.lines.push(line)
        if (this.lines.length > KEEP_LINES) this.lines.shift()
        const msg = parseJson(line)
        if (msg !== undefined) for (const w of this.watchers) w(msg)
        if (msg?.['event'] === 'ready') {
          clearTimeout(timer)
          this.id = String(msg['bookieId'])
          this.address = String(msg['address'])
          this.port = Number(String(msg['listen']).split(':').pop())
          this.state = 'running'
          resolve()
        }
      })
      void this.exit.then(e => {
        clearTimeout(timer)
        reject(new Error(`bookie ${this.index} exited (${e.code ?? e.signal}) before it was ready:\n${this.tail()}`))
      })
    })
    await ready
  }

  /** SIGKILL; resolves once the process is gone (a paused one too). */
  async kill(): Promise<Exit> {
    return this.signal('SIGKILL')
  }

  /** SIGTERM (clean stop); resolves with the exit code once the process is gone. */
  async stop(): Promise<Exit> {
    return this.signal('SIGTERM')
  }

  /** SIGSTOP: the process stays, its sockets accept connections, it answers nothing. */
  pause(): void {
    this.requireLive().kill('SIGSTOP')
    this.state = 'paused'
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.requireLive().kill('SIGCONT')
    this.state = 'running'
  }

  /** Kill it if it runs, then start it again on the same data directory and port. */
  async restart(): Promise<void> {
    if (this.state !== 'exited') await this.kill()
    await this.start()
  }

  /**
   * The next log record (from now on) with this `event` field — 'ready', 'stopping', 'stopped' — or that
   * `match` accepts. Rejects if the process exits first.
   */
  nextLog(match: string | ((msg: Record<string, unknown>) => boolean)): Promise<Record<string, unknown>> {
    const accept = typeof match === 'string' ? (m: Record<string, unknown>) => m['event'] === match : match
    return new Promise((resolve, reject) => {
      const w = (msg: Record<string, unknown>): void => {
        if (!accept(msg)) return
        this.watchers.delete(w)
        resolve(msg)
      }
      this.watchers.add(w)
      void this.exit.then(e => {
        if (!this.watchers.delete(w)) return
        reject(new Error(`bookie ${this.index} exited (${e.code ?? e.signal}) before the log line awaited:\n${this.tail()}`))
      })
    })
  }

  /** The last lines of its log, for failure messages. */
  tail(n = 20): string {
    return this.lines.slice(-n).join('\n')
  }

  private async signal(sig: NodeJS.Signals): Promise<Exit> {
    if (this.state === 'exited') return this.exit
    const child = this.requireLive()
    child.kill(sig)
    if (this.state === 'paused' && sig !== 'SIGKILL') child.kill('SIGCONT') // a stopped process acts on SIGTERM only once resumed
    return this.exit
  }

  private requireLive(): ChildProcess {
    if (this.child === undefined || this.state === 'exited') throw new Error(`bookie ${this.index} is not running`)
    return this.child
  }
}

export class Cluster {
  readonly bookies: BookieProcess[] = []
  readonly metadataUrl: string

  private constructor(readonly dir: string, private readonly opts: ClusterOptions) {
    this.metadataUrl = opts.metadata ?? `sqlite:${join(dir, 'meta.db')}`
  }

  /** Start `opts.bookies` daemons (in parallel) and tear them all down with `t`. */
  static async start(t: Teardown, opts: ClusterOptions = {}): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), 'logctl-cluster-'))
    const cluster = new Cluster(dir, opts)
    t.teardown(() => cluster.teardown())
    await Promise.all(Array.from({length: opts.bookies ?? 3}, () => cluster.add()))
    return cluster
  }

  /** Start one more bookie; resolves when it is ready. */
  async add(): Promise<BookieProcess> {
    const b = new BookieProcess(this.bookies.length, join(this.dir, `bookie-${this.bookies.length}`), {metadataUrl: this.metadataUrl, opts: this.opts})
    this.bookies.push(b)
    await b.start()
    return b
  }

  bookie(i: number): BookieProcess {
    const b = this.bookies[i]
    if (b === undefined) throw new Error(`no bookie ${i} (the cluster has ${this.bookies.length})`)
    return b
  }

  /** Advertised addresses, by index. */
  addresses(): string[] {
    return this.bookies.map(b => b.address)
  }

  /** Bookie ids (as registered in the metadata store), by index. */
  ids(): string[] {
    return this.bookies.map(b => b.id)
  }

  /** SIGKILL every live daemon (resuming paused ones), wait for them, remove the directory. */
  async teardown(): Promise<void> {
    await Promise.all(this.bookies.map(b => b.kill()))
    rmSync(this.dir, {recursive: true, force: true})
  }
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line)
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
