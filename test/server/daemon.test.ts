import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'
import t from 'tap'
import {ErrorCode, EXIT_CODES} from '../../src/errors.js'
import {openMetadataStore} from '../../src/meta/open.js'
import type {BookieStatus} from '../../src/meta/store.js'
import {connectBookie, type AddResult} from '../../src/net/bookie-client.js'
import {encodeAddBatch} from '../../src/net/frames.js'
import type {TransportName} from '../../src/net/transport.js'
import {Cluster} from '../helpers/cluster.js'
import {payloadFor} from '../helpers/entries.js'
import {frame, raw, rawSession} from '../net/harness.js'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

async function registered(url: string, id: string): Promise<BookieStatus | undefined> {
  const store = await openMetadataStore(url)
  try {
    return (await store.listBookies()).find(b => b.id === id)
  } finally {
    await store.close()
  }
}

/** Run `logctl daemon` with these arguments until it exits by itself; its exit code. */
async function daemonExit(args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, [RUN_JS, 'daemon', ...args], {stdio: 'ignore'})
  const [code] = (await once(child, 'exit')) as [number | null]
  return code
}

t.test('a daemon serves, registers itself, and stops cleanly on SIGTERM (exit 0, deregistered)', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const b = cluster.bookie(0)
  t.match(b.address, /^127\.0\.0\.1:\d+$/, 'the ready line names the bound port')
  t.equal(b.id, b.address, 'the bookie id defaults to the advertised address')
  t.match(await registered(cluster.metadataUrl, b.id), {address: b.address, state: 'writable', alive: true, ledgers: 0})

  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  t.same((await c.addEntries([frame(1n, 0n), frame(1n, 1n)])).map(r => r.ok), [true, true])
  t.match(await c.status(), {bookieId: b.id, state: 'writable', ledgers: 1, entries: 2})
  const s = rawSession(t, b.address)
  const m = await raw(s, {':method': 'GET', ':path': '/metrics'})
  t.match(m.body.toString(), /logctl_bookie_add_entries_total\{result="ok"\} 2/)
  t.match(m.body.toString(), /process_cpu_seconds_total/, 'the daemon adds process metrics')
  s.destroy()

  const stopped = b.nextLog('stopped')
  t.same(await b.stop(), {code: 0, signal: null}, 'SIGTERM: exit 0')
  t.match(await stopped, {bookieId: b.id})
  t.match(await registered(cluster.metadataUrl, b.id), {alive: false}, 'deregistered on the way out')
})

t.test('SIGTERM during adds: every acknowledged add survives; later ones are refused as unavailable, not lost', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const b = cluster.bookie(0)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  const batch = (i: number) => Array.from({length: 8}, (_, j) => frame(2n, BigInt(i * 8 + j), 2000))
  // One batch to connect, 19 more sent before the signal, then one at a time until the bookie refuses (bounded).
  const sent: Array<Promise<AddResult[] | unknown>> = [Promise.resolve(await c.addEntries(batch(0)))] // connected
  for (let i = 1; i < 20; i++) sent.push(c.addEntries(batch(i)).catch((err: unknown) => err))
  await c.status() // the bookie is up and serving; some of the 19 may still be on their way
  const stopping = b.nextLog('stopping')
  process.kill(b.pid!, 'SIGTERM')
  await stopping
  for (let i = 20; i < 200; i++) {
    const o = await c.addEntries(batch(i)).catch((err: unknown) => err)
    sent.push(Promise.resolve(o))
    if (!Array.isArray(o)) break
  }
  const outcomes = await Promise.all(sent)
  t.same(await b.exited, {code: 0, signal: null}, 'clean exit')
  const acked: bigint[] = []
  let refused = 0
  outcomes.forEach((o, i) => {
    if (Array.isArray(o)) {
      (o as AddResult[]).forEach((r, j) => { if (r.ok) acked.push(BigInt(i * 8 + j)) })
    } else {
      refused++
      t.equal((o as {code?: unknown}).code, ErrorCode.BOOKIE_UNAVAILABLE, `batch ${i}: refused as unavailable`)
    }
  })
  // All batches travel on one add stream: those the bookie had received when the signal came are finished
  // and acknowledged, whole; those still on their way are refused, whole (the writer resends them
  // elsewhere). So the outcomes are some acknowledged batches, then only refusals.
  const firstRefused = outcomes.findIndex(o => !Array.isArray(o))
  t.ok(firstRefused >= 1, `batch 0 acknowledged, batch ${firstRefused} the first refused`)
  t.ok(outcomes.slice(0, firstRefused).every(o => (o as AddResult[]).every(r => r.ok)), `${acked.length} entries acknowledged: every batch before the first refusal, whole`)
  t.ok(outcomes.slice(firstRefused).every(o => !Array.isArray(o)), 'after the first refusal, only refusals')
  t.ok(refused >= 1)
  await b.start()
  const held = new Set((await c.readEntries(2n, 0n, BigInt(outcomes.length * 8))).map(e => e.entryId))
  t.ok(acked.every(id => held.has(id)), 'every acknowledged entry is there after the restart')
})

t.test('SIGKILL: BOOKIE_UNAVAILABLE; after a restart on the same dir and port the data is intact and the client reconnects', async t => {
  const cluster = await Cluster.start(t, {bookies: 2})
  const b = cluster.bookie(1)
  for (const transport of ['http2', 'undici'] as TransportName[]) {
    const ledger = transport === 'http2' ? 10n : 11n
    const c = connectBookie(b.address, {transport, timeoutMs: 5000})
    t.teardown(() => c.close())
    const frames = Array.from({length: 50}, (_, i) => frame(ledger, BigInt(i), 3000))
    t.ok((await c.addEntries(frames)).every(r => r.ok))
    await b.kill()
    await t.rejects(c.status(), {code: ErrorCode.BOOKIE_UNAVAILABLE, retriable: true}, `${transport}: killed bookie`)
    const port = b.port
    await b.restart()
    t.equal(b.port, port, 'same port')
    const back = await c.readEntries(ledger, 0n, 49n)
    t.equal(back.length, 50, `${transport}: all 50 entries after SIGKILL + restart`)
    t.ok(back.every(e => e.payload.equals(payloadFor(ledger, e.entryId, 3000))), 'byte for byte')
    t.same(await c.readLac(ledger, -1n, 0), {lac: 48n, lastEntryId: 49n})
  }
  t.match(await registered(cluster.metadataUrl, b.id), {alive: true, ledgers: 2}, 're-registered after the restart')
  t.match(await registered(cluster.metadataUrl, cluster.bookie(0).id), {alive: true}, 'the other bookie was not disturbed')
})

t.test('SIGSTOP: TIMEOUT within timeoutMs, not a hang; after SIGCONT the same client works', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const b = cluster.bookie(0)
  for (const transport of ['http2', 'undici'] as TransportName[]) {
    const c = connectBookie(b.address, {transport, timeoutMs: 1000})
    t.teardown(() => c.close())
    t.ok((await c.addEntries([frame(20n, transport === 'http2' ? 0n : 1n)]))[0]?.ok, 'connected and working')
    b.pause()
    await t.rejects(c.addEntries([frame(21n, 0n)]), {code: ErrorCode.TIMEOUT, retriable: true}, `${transport}: add to a stopped bookie`)
    await t.rejects(c.readLac(20n, 5n, 100), {code: ErrorCode.TIMEOUT}, `${transport}: long poll on a stopped bookie`)
    // A follower's LAC probe: its own timeout, far shorter than the wait it asks for (which would be 61 s here).
    await t.rejects(c.readLac(20n, 5n, 60_000, {timeoutMs: 300}), {code: ErrorCode.TIMEOUT}, `${transport}: a probe with its own timeout`)
    b.resume()
    t.ok((await c.addEntries([frame(21n, 0n)]))[0]?.ok, `${transport}: works again after SIGCONT`)
  }
})

t.test('a second signal exits at once, even while a stalled upload holds the clean stop', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const b = cluster.bookie(0)
  const s = rawSession(t, b.address)
  const body = encodeAddBatch([frame(30n, 0n, 1000)])
  const stalled = raw(s, {':method': 'POST', ':path': '/v1/entries'}, [body.subarray(0, 100)], {end: false}).catch(() => undefined)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  await c.status() // the stalled stream is open on the daemon once a later request has been answered
  const stopping = b.nextLog('stopping')
  process.kill(b.pid!, 'SIGTERM')
  await stopping
  const last = b.nextLog('exit')
  t.same(await b.stop(), {code: 143, signal: null}, 'second SIGTERM: exit 143 without waiting')
  await last
  await stalled
})

t.test('start-up failures exit with their error code', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const b = cluster.bookie(0)
  t.equal(await daemonExit(['--data-dir', b.dataDir, '--listen', '127.0.0.1:0']), EXIT_CODES[ErrorCode.LOCKED], 'a data dir in use: LOCKED')
  t.equal(await daemonExit(['--data-dir', `${cluster.dir}/x`, '--listen', 'nowhere']), EXIT_CODES[ErrorCode.BAD_INPUT], 'a bad --listen: BAD_INPUT')
  t.equal(await daemonExit(['--data-dir', `${cluster.dir}/y`, '--listen', b.address]), EXIT_CODES[ErrorCode.BAD_INPUT], 'a port in use: BAD_INPUT')
  t.equal(await daemonExit(['--data-dir', `${cluster.dir}/z`, '--listen', '127.0.0.1:0', '--metadata', 'nosuch://x']), EXIT_CODES[ErrorCode.BAD_INPUT], 'a bad metadata URL')
})
