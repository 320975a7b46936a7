/**
 * Redis 7 streams as the durable peer (docs/DESIGN.md section 8): a private redis-server on a loopback
 * port with its data in a temp directory on the same disk, `--appendonly yes --appendfsync always --save ''`
 * (every write fsync'd to the AOF before the reply), and XADD s * f <1 KiB> from N clients, each sending
 * its next command when the previous reply came (no pipelining):
 *
 * - 'redis-benchmark' (default when installed): its C client, one process, `-c clients -n requests`; the
 *   value is a literal 1024-byte argument (redis-benchmark 7.0 expands `__rand_int__` only, `-d` applies
 *   to its built-in tests). Latency percentiles are its own (ms, from its histogram).
 * - 'node': a minimal RESP client in this process on node:net (no dependency), same closed loop, latency
 *   into an hdr-histogram.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdirSync} from 'node:fs'
import {createConnection, createServer, type Socket} from 'node:net'
import {performance} from 'node:perf_hooks'
import {createInterface} from 'node:readline'
import {CpuMeter, histogram, pcts, recordUs, sleep, type CpuShares, type Pcts} from './machine.js'

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], {encoding: 'utf8'})
  const p = r.stdout?.trim()
  return r.status === 0 && p ? p : undefined
}

export function redisVersion(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], {encoding: 'utf8'})
  return r.status === 0 ? r.stdout.trim().replace(/^Redis server /, '') : undefined
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port
      s.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  port: number
  pid: number
  stop(): Promise<void>
}

export async function startRedis(dir: string): Promise<RedisServer> {
  mkdirSync(dir, {recursive: true})
  const port = await freePort()
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', '']
  const child: ChildProcess = spawn('redis-server', args, {stdio: ['ignore', 'pipe', 'pipe']})
  const onExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', onExit)
  const closed = new Promise<void>(resolve => child.once('close', () => resolve()))
  const lines: string[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server did not get ready within 10 s:\n${lines.join('\n')}`))
    }, 10_000)
    child.stderr!.on('data', (d: Buffer) => lines.push(d.toString()))
    createInterface({input: child.stdout!}).on('line', line => {
      lines.push(line)
      if (lines.length > 50) lines.shift()
      if (/Ready to accept connections/i.test(line)) {
        clearTimeout(timer)
        resolve()
      }
    })
    void closed.then(() => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited before it was ready:\n${lines.join('\n')}`))
    })
  })
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await closed
      clearTimeout(t)
      process.removeListener('exit', onExit)
    },
  }
}

export interface RedisResult {
  kind: 'redis'
  client: 'redis-benchmark' | 'node'
  clients: number
  requests: number
  seconds: number
  opsPerSec: number
  mbPerSec: number
  /** µs (redis-benchmark reports ms with 3 decimals; converted). */
  us: Pcts
  cpu: CpuShares
  attempts?: number
  discarded?: unknown[]
}

/** XADD s * f <size bytes> through redis-benchmark. */
export async function xaddRedisBenchmark(server: RedisServer, o: {clients: number; requests: number; size: number}): Promise<RedisResult> {
  const value = 'x'.repeat(o.size)
  const args = ['-h', '127.0.0.1', '-p', String(server.port), '-c', String(o.clients), '-n', String(o.requests), '--csv', '--precision', '3', 'XADD', 's', '*', 'f', value]
  const meter = new CpuMeter(() => [server.pid])
  meter.start()
  const t0 = performance.now()
  const child = spawn('redis-benchmark', args, {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>(resolve => child.once('close', c => resolve(c)))
  const seconds = (performance.now() - t0) / 1000
  const cpu = meter.stop()
  if (code !== 0) throw new Error(`redis-benchmark exited ${code}: ${err}`)
  // Last CSV line: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const line = out.trim().split('\n').filter(l => l.startsWith('"XADD')).at(-1)
  if (!line) throw new Error(`no result in redis-benchmark's output:\n${out.slice(0, 2000)}`)
  const f = line.split(',').slice(-7).map(x => Number(x.replace(/"/g, '')))
  const [rps, , , p50, , p99, max] = f as [number, number, number, number, number, number, number]
  return {
    kind: 'redis', client: 'redis-benchmark', clients: o.clients, requests: o.requests, seconds, opsPerSec: rps, mbPerSec: (rps * o.size) / 1e6,
    us: {count: o.requests, p50: p50 * 1000, p99: p99 * 1000, p999: NaN, max: max * 1000}, cpu,
  }
}

/** RESP encoding of one command. */
function resp(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/**
 * One connection, one command at a time: resolves with each reply's first line (enough for XADD's bulk
 * string id or an error).
 */
class RespConn {
  private buf: Buffer = Buffer.alloc(0)
  private waiting: Array<(line: string) => void> = []
  private constructor(private readonly sock: Socket) {
    sock.setNoDelay(true)
    sock.on('data', d => this.onData(d))
  }

  static open(port: number): Promise<RespConn> {
    return new Promise((resolve, reject) => {
      const s = createConnection({host: '127.0.0.1', port}, () => resolve(new RespConn(s)))
      s.once('error', reject)
    })
  }

  send(cmd: Buffer): Promise<string> {
    return new Promise(resolve => {
      this.waiting.push(resolve)
      this.sock.write(cmd)
    })
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
    for (;;) {
      const nl = this.buf.indexOf('\r\n')
      if (nl < 0) return
      const head = this.buf.subarray(0, nl).toString()
      let end = nl + 2
      if (head[0] === '$') {
        const n = Number(head.slice(1))
        if (n >= 0) {
          if (this.buf.length < end + n + 2) return
          end += n + 2
        }
      }
      this.buf = this.buf.subarray(end)
      if (head[0] === '-') throw new Error(`redis: ${head}`)
      this.waiting.shift()?.(head)
    }
  }

  close(): void {
    this.sock.destroy()
  }
}

/** XADD s * f <size bytes> from `clients` connections in this process (closed loop). */
export async function xaddNode(server: RedisServer, o: {clients: number; requests: number; size: number}): Promise<RedisResult> {
  const cmd = resp(['XADD', 's', '*', 'f', Buffer.alloc(o.size, 'x')])
  const conns = await Promise.all(Array.from({length: o.clients}, () => RespConn.open(server.port)))
  try {
    for (const c of conns.slice(0, 8)) await c.send(cmd) // warm-up
    const h = histogram()
    let issued = 0
    const meter = new CpuMeter(() => [server.pid])
    meter.start()
    const t0 = performance.now()
    await Promise.all(conns.map(async c => {
      while (issued < o.requests) {
        issued++
        const s = performance.now()
        await c.send(cmd)
        recordUs(h, (performance.now() - s) * 1000)
      }
    }))
    const seconds = (performance.now() - t0) / 1000
    const cpu = meter.stop()
    const ops = h.totalCount
    return {kind: 'redis', client: 'node', clients: o.clients, requests: ops, seconds, opsPerSec: ops / seconds, mbPerSec: (ops * o.size) / seconds / 1e6, us: pcts(h), cpu}
  } finally {
    for (const c of conns) c.close()
    await sleep(50)
  }
}
