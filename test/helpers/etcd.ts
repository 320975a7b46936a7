/**
 * A real etcd for tests and benchmarks: a child process of the `etcd` binary (Debian's etcd-server package) on
 * ephemeral 127.0.0.1 ports with a throw-away data dir. With LOGCTL_TEST_ETCD=etcd://host:port set, that
 * server is used instead and nothing is started or stopped.
 *
 * A missing binary is an error, not a skip: CI installs etcd (.ci/install-etcd.sh), so a silent skip would
 * hide a broken CI image.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {accessSync, constants, mkdtempSync, rmSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'

export interface EtcdServer {
  /** `etcd://127.0.0.1:port`, the form openMetadataStore takes. */
  readonly url: string
  /** `http://127.0.0.1:port`, the client endpoint (gRPC and the JSON gateway share it). */
  readonly endpoint: string
  /** false when LOGCTL_TEST_ETCD pointed at a server we do not own. */
  readonly owned: boolean
  readonly child: ChildProcess | undefined
  stop(): Promise<void>
}

const START_TIMEOUT_MS = 20_000
const STOP_GRACE_MS = 5_000
const BIND_ATTEMPTS = 3

export function findEtcdBinary(): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(d => d !== '')
  for (const candidate of [...dirs.map(d => join(d, 'etcd')), '/usr/bin/etcd']) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here; try the next directory
    }
  }
  return undefined
}

/** Start an etcd (or return the external one named by LOGCTL_TEST_ETCD) and wait until it is healthy. */
export async function startEtcd(): Promise<EtcdServer> {
  const external = process.env['LOGCTL_TEST_ETCD']
  if (external !== undefined && external !== '') {
    const first = external.replace(/^etcd:\/\//, '').split(/[,/]/)[0] ?? ''
    return {url: external, endpoint: `http://${first}`, owned: false, child: undefined, stop: async () => {}}
  }
  const bin = findEtcdBinary()
  if (bin === undefined) {
    throw new Error('etcd binary not found on PATH or at /usr/bin/etcd: install it with `bash .ci/install-etcd.sh` ' +
      '(apt-get install -y etcd-server), or set LOGCTL_TEST_ETCD=etcd://host:port to use a running server')
  }
  // Ports come from listen(0)-then-close, so another process can take one before etcd binds it: retry then.
  let lastError: unknown
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    try {
      return await launch(bin)
    } catch (err) {
      lastError = err
      if (!/address already in use/i.test(String((err as Error).message))) break
    }
  }
  throw lastError
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({length: n}, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => resolve(s))
  })))
  const ports = servers.map(s => (s.address() as AddressInfo).port)
  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  return ports
}

async function launch(bin: string): Promise<EtcdServer> {
  const [client, peer, metrics] = await freePorts(3) as [number, number, number]
  const dataDir = mkdtempSync(join(tmpdir(), 'logctl-etcd-'))
  const name = `logctl-test-${process.pid}`
  const args = [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `${name}=http://127.0.0.1:${peer}`, '--initial-cluster-state', 'new',
    '--listen-metrics-urls', `http://127.0.0.1:${metrics}`, '--logger', 'zap', '--log-level', 'warn',
  ]
  const child = spawn(bin, args, {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-4000) })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  // If the test process dies without calling stop(), do not leave an etcd behind.
  const reap = (): void => { child.kill('SIGKILL') }
  process.once('exit', reap)

  const stop = async (): Promise<void> => {
    process.removeListener('exit', reap)
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    }
    rmSync(dataDir, {recursive: true, force: true})
  }

  const healthy = waitHealthy(`http://127.0.0.1:${metrics}/health`)
  try {
    const outcome = await Promise.race([healthy.then(() => 'up' as const), exited])
    if (outcome !== 'up') throw new Error(`etcd exited with code ${String(outcome)} before it was healthy: ${stderr.trim()}`)
  } catch (err) {
    healthy.cancel()
    await stop()
    throw err
  }
  return {url: `etcd://127.0.0.1:${client}`, endpoint: `http://127.0.0.1:${client}`, owned: true, child, stop}
}

/** Poll /health (each poll is a real request) until etcd says {"health":"true"} or the deadline passes. */
function waitHealthy(url: string): Promise<void> & {cancel(): void} {
  let cancelled = false
  const run = async (): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS
    while (!cancelled && Date.now() < deadline) {
      try {
        const res = await fetch(url, {signal: AbortSignal.timeout(1000)})
        const body = await res.json() as {health?: string}
        if (body.health === 'true') return
      } catch {
        // not listening yet
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    if (!cancelled) throw new Error(`etcd did not become healthy within ${START_TIMEOUT_MS} ms (${url})`)
  }
  const p = run() as Promise<void> & {cancel(): void}
  p.cancel = () => { cancelled = true }
  return p
}
