/**
 * Metadata store benchmark: get, put and CAS on a real etcd through the two client paths we considered
 * (the `etcd3` gRPC package and etcd's JSON gateway over undici), then through logctl's own drivers (etcd and
 * SQLite) so the cost of our layer shows as a ratio to the raw path measured in the same run.
 *
 *   npx tsc -b && node dist/benchmarks/meta.js [--ops 1000] [--concurrency 16] [--rounds 3]
 *
 * Starts its own etcd (test/helpers/etcd.ts) unless LOGCTL_TEST_ETCD=etcd://host:port names one. Each cell
 * runs once per round; rounds alternate the order of the clients (ABBA) so that neither always runs on a
 * warmer or a busier etcd, and the table shows the median round with the min-max of ops/s. Baselines: an
 * HTTP round trip to etcd's /version (network + HTTP, no raft, no disk) and a 100-byte write + fdatasync on
 * the temp dir's file system (the floor under every durable etcd or SQLite write). "vs gateway" is a row's
 * ops/s over the raw JSON gateway's for the same operation and concurrency in the same run.
 */
import {execFileSync} from 'node:child_process'
import {closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync} from 'node:fs'
import {createRequire} from 'node:module'
import {createServer, type AddressInfo, type Socket} from 'node:net'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {Etcd3} from 'etcd3'
import {Pool} from 'undici'
import {startEtcd} from '../test/helpers/etcd.js'
import {openMetadataStore} from '../src/meta/open.js'
import type {MetadataStore} from '../src/meta/store.js'

const {values: flags} = parseArgs({options: {
  ops: {type: 'string', default: '1000'}, concurrency: {type: 'string', default: '16'}, rounds: {type: 'string', default: '3'},
}})
const OPS = Number(flags.ops)
const CONCURRENCY = Number(flags.concurrency)
const ROUNDS = Number(flags.rounds)
const VALUE = Buffer.alloc(100, 'x')
const GATEWAY = 'JSON gateway (undici)'

interface Run { opsPerSec: number; p50: number; p99: number; p999: number }
/** One table row: every round's run of one (client, op, in flight), and the gateway op it compares with. */
interface Cell { client: string; op: string; inFlight: number; versus: string | undefined; runs: Run[] }
const cells = new Map<string, Cell>()

/** Run `ops` calls of `fn(i, worker)` with `inFlight` workers; record per-call latency in ms. */
async function measure(client: string, op: string, inFlight: number, fn: (i: number, worker: number) => Promise<void>, versus?: string): Promise<void> {
  for (let i = 0; i < Math.min(50, OPS); i++) await fn(i, 0) // warm-up: connections, JIT, prepared statements
  const lat: number[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({length: inFlight}, async (_, worker) => {
    while (next < OPS) {
      const i = next++
      const t0 = performance.now()
      await fn(i, worker)
      lat.push(performance.now() - t0)
    }
  }))
  const secs = (performance.now() - start) / 1000
  lat.sort((a, b) => a - b)
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN
  const key = `${client}|${op}|${inFlight}`
  const cell = cells.get(key) ?? {client, op, inFlight, versus, runs: []}
  cell.runs.push({opsPerSec: OPS / secs, p50: pct(0.5), p99: pct(0.99), p999: pct(0.999)})
  cells.set(key, cell)
}

function fsyncBaseline(dir: string): Promise<void> {
  const fd = openSync(join(dir, 'fsync-probe'), 'w')
  return measure('baseline', 'write 100 B + fdatasync', 1, async i => {
    writeSync(fd, VALUE, 0, VALUE.length, (i % 64) * VALUE.length)
    fdatasyncSync(fd)
  }).finally(() => closeSync(fd))
}

async function benchEtcd3(endpoint: string): Promise<void> {
  const c = new Etcd3({hosts: endpoint})
  const key = (s: string): Buffer => Buffer.from(`bench/etcd3/${s}`)
  await c.kv.put({key: key('get'), value: VALUE})
  for (const inFlight of [1, CONCURRENCY]) {
    await measure('etcd3 (gRPC)', 'get', inFlight, async () => { await c.kv.range({key: key('get')}) }, 'get')
    await measure('etcd3 (gRPC)', 'put', inFlight, async i => { await c.kv.put({key: key(`put/${i % 64}`), value: VALUE}) }, 'put')
    // CAS: each worker owns a key and carries its mod revision from one successful txn to the next.
    const revs = await Promise.all(Array.from({length: inFlight}, async (_, w) => (await c.kv.put({key: key(`cas/${w}`), value: VALUE})).header.revision))
    await measure('etcd3 (gRPC)', 'CAS', inFlight, async (_, w) => {
      const res = await c.kv.txn({
        compare: [{key: key(`cas/${w}`), target: 'Mod', result: 'Equal', mod_revision: revs[w]!}],
        success: [{request_put: {key: key(`cas/${w}`), value: VALUE}}],
      })
      if (!res.succeeded) throw new Error('CAS lost in a benchmark that has no contention')
      revs[w] = res.header.revision
    }, 'CAS')
  }
  c.close()
}

async function benchGateway(endpoint: string): Promise<void> {
  const pool = new Pool(endpoint, {connections: CONCURRENCY, pipelining: 1})
  const call = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await pool.request({method: 'POST', path, body: JSON.stringify(body), headers: {'content-type': 'application/json'}})
    const json = await res.body.json() as Record<string, unknown>
    if (res.statusCode !== 200) throw new Error(`gateway ${path}: ${res.statusCode} ${JSON.stringify(json)}`)
    return json
  }
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')
  const key = (s: string): string => b64(`bench/gw/${s}`)
  const value = b64(VALUE)
  await call('/v3/kv/put', {key: key('get'), value})
  await measure('baseline', 'HTTP GET /version', 1, async () => { await (await pool.request({method: 'GET', path: '/version'})).body.text() })
  for (const inFlight of [1, CONCURRENCY]) {
    await measure(GATEWAY, 'get', inFlight, async () => { await call('/v3/kv/range', {key: key('get')}) }, 'get')
    await measure(GATEWAY, 'put', inFlight, async i => { await call('/v3/kv/put', {key: key(`put/${i % 64}`), value}) }, 'put')
    const revs = await Promise.all(Array.from({length: inFlight}, async (_, w) =>
      ((await call('/v3/kv/put', {key: key(`cas/${w}`), value})).header as {revision: string}).revision))
    await measure(GATEWAY, 'CAS', inFlight, async (_, w) => {
      const res = await call('/v3/kv/txn', {
        compare: [{key: key(`cas/${w}`), target: 'MOD', result: 'EQUAL', mod_revision: revs[w]}],
        success: [{request_put: {key: key(`cas/${w}`), value}}],
      })
      // proto3 JSON omits false booleans: a lost compare has no `succeeded` field at all.
      if (res['succeeded'] !== true) throw new Error('CAS lost in a benchmark that has no contention')
      revs[w] = (res['header'] as {revision: string}).revision
    }, 'CAS')
  }
  await pool.close()
}

/** The same three operations through logctl's MetadataStore (KV get, create-or-CAS put, ledger CAS). */
async function benchStore(label: string, store: MetadataStore, round: number): Promise<void> {
  const tag = `bench/${process.pid}/${label.replace(/\W+/g, '-')}`
  if (round === 0) await store.put(`${tag}/get`, VALUE, null)
  for (const inFlight of [1, CONCURRENCY]) {
    await measure(label, 'get', inFlight, async () => { await store.get(`${tag}/get`) }, 'get')
    const versions = await Promise.all(Array.from({length: inFlight}, (_, w) => store.put(`${tag}/cas/${round}/${inFlight}/${w}`, VALUE, null)))
    await measure(label, 'CAS (KV put)', inFlight, async (_, w) => {
      versions[w] = await store.put(`${tag}/cas/${round}/${inFlight}/${w}`, VALUE, versions[w]!)
    }, 'CAS')
    const ledgers = await Promise.all(Array.from({length: inFlight}, () => store.createLedger({
      ensembleSize: 3, writeQuorum: 2, ackQuorum: 2, state: 'OPEN', lastEntryId: -1n, length: 0n,
      ensembles: [{firstEntryId: 0n, bookies: ['b1', 'b2', 'b3']}], compression: 'none', customMetadata: {}, createdAt: Date.now(),
    })))
    await measure(label, 'CAS (updateLedger)', inFlight, async (i, w) => {
      const cur = ledgers[w]!
      ledgers[w] = await store.updateLedger({...cur.value, customMetadata: {n: String(i)}}, cur.version)
    }, 'CAS')
    // A create is a read of the id counter plus a CAS'd txn: two round trips on etcd.
    await measure(label, 'createLedger', inFlight, async () => {
      await store.createLedger({...ledgers[0]!.value})
    }, 'CAS')
  }
}

/**
 * What loading each client costs a fresh process (a `logctl` command pays it on every run): median of 5
 * `require()` timings, each in a new node process.
 */
function loadCost(module: string): string {
  const path = createRequire(import.meta.url).resolve(module)
  const ms = Array.from({length: 5}, () => Number(execFileSync(process.execPath,
    ['-e', `const t = performance.now(); require(${JSON.stringify(path)}); console.log(performance.now() - t)`], {encoding: 'utf8'})))
  return `${module} ${median(ms).toFixed(1)} ms`
}

/**
 * How long each client takes to give up on a server that accepts connections and never answers (a hung
 * etcd, a black-holed route), with a 2 s deadline per call: what "bounded" means in practice.
 */
async function silentServer(): Promise<string[]> {
  const sockets = new Set<Socket>()
  const server = createServer(s => { sockets.add(s) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const timed = async (label: string, fn: () => Promise<unknown>): Promise<string> => {
    const start = performance.now()
    const outcome = await fn().then(() => 'answered?!', (err: Error & {code?: unknown}) => (typeof err.code === 'string' ? err.code : err.constructor.name))
    return `${label}: gave up after ${(performance.now() - start).toFixed(0)} ms (${outcome})`
  }
  const c = new Etcd3({hosts: `http://${endpoint}`, defaultCallOptions: ctx => (ctx.isStream ? {} : {deadline: Date.now() + 2000})})
  const pool = new Pool(`http://${endpoint}`)
  try {
    return [
      await timed('etcd3, deadline 2000 ms per call (default retry policy)', () => c.get('k').string()),
      await timed('undici POST /v3/kv/range, AbortSignal.timeout(2000)', () => pool.request({method: 'POST', path: '/v3/kv/range', body: '{}', signal: AbortSignal.timeout(2000)})),
      await timed('logctl etcd driver open, timeoutMs 2000', () => openMetadataStore(`etcd://${endpoint}`, {timeoutMs: 2000})),
    ]
  } finally {
    c.close()
    await pool.destroy()
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  }
}

function machineLine(): string {
  const cpu = cpus()
  return `machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, Node ${process.version}, ${process.platform}; tmp dir ${tmpdir()}`
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN
}

function print(): void {
  const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(2))
  const medianOps = (c: Cell): number => median(c.runs.map(r => r.opsPerSec))
  console.log(`| client | op | in flight | ops/s median (min-max of ${ROUNDS}) | p50 ms | p99 ms | p99.9 ms | vs gateway |`)
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const c of cells.values()) {
    const ops = c.runs.map(r => r.opsPerSec)
    const gw = c.versus === undefined ? undefined : cells.get(`${GATEWAY}|${c.versus}|${c.inFlight}`)
    const ratio = gw === undefined ? '-' : (medianOps(c) / medianOps(gw)).toFixed(2)
    console.log(`| ${c.client} | ${c.op} | ${c.inFlight} | ${fmt(medianOps(c))} (${fmt(Math.min(...ops))}-${fmt(Math.max(...ops))}) | ` +
      `${median(c.runs.map(r => r.p50)).toFixed(2)} | ${median(c.runs.map(r => r.p99)).toFixed(2)} | ${median(c.runs.map(r => r.p999)).toFixed(2)} | ${ratio} |`)
  }
}

async function main(): Promise<void> {
  console.log(machineLine())
  console.log(`ops per cell ${OPS}, value ${VALUE.length} B, concurrency 1 and ${CONCURRENCY}, ${ROUNDS} rounds`)
  console.log(`module load time in a fresh process (median of 5): ${loadCost('etcd3')}, ${loadCost('undici')}`)
  const dir = mkdtempSync(join(tmpdir(), 'logctl-bench-meta-'))
  const etcd = await startEtcd()
  const stores: Array<[string, MetadataStore]> = []
  try {
    stores.push(['logctl etcd driver', await openMetadataStore(etcd.url)])
    stores.push(['logctl sqlite driver', await openMetadataStore(`sqlite:${join(dir, 'meta.db')}`)])
    for (let round = 0; round < ROUNDS; round++) {
      await fsyncBaseline(dir)
      const raw = [() => benchEtcd3(etcd.endpoint), () => benchGateway(etcd.endpoint)]
      for (const run of round % 2 === 0 ? raw : raw.reverse()) await run()
      for (const [label, store] of round % 2 === 0 ? stores : [...stores].reverse()) await benchStore(label, store, round)
    }
  } finally {
    await Promise.all(stores.map(([, s]) => s.close()))
    await etcd.stop()
    rmSync(dir, {recursive: true, force: true})
  }
  print()
  console.log('\nA server that accepts connections and never answers:')
  for (const line of await silentServer()) console.log(`- ${line}`)
}

await main()
