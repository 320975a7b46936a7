import {createServer, type Socket} from 'node:net'
import t from 'tap'
import {ErrorCode} from '../../src/errors.js'
import {connectBookie, type AddResult, type BookieClient} from '../../src/net/bookie-client.js'
import type {TransportName} from '../../src/net/transport.js'
import {entry, payloadFor} from '../helpers/entries.js'
import {frame, localBookie} from './harness.js'

const transports: TransportName[] = ['http2', 'undici']

function client(t: {teardown: (fn: () => unknown) => void}, address: string, transport: TransportName, timeoutMs = 10_000): BookieClient {
  const c = connectBookie(address, {transport, timeoutMs})
  t.teardown(() => c.close())
  return c
}

const codes = (rs: AddResult[]): string[] => rs.map(r => (r.ok ? 'ok' : r.error.code))

for (const transport of transports) {
  t.test(`${transport}: adds, idempotent retries, conflicts and range reads`, async t => {
    const b = await localBookie(t, {server: {maxReadEntries: 7}})
    const c = client(t, b.address, transport)
    t.equal(c.address, b.address)
    const frames = [...Array.from({length: 20}, (_, i) => frame(1n, BigInt(i))), ...Array.from({length: 5}, (_, i) => frame(2n, BigInt(i), 1000))]
    t.same(codes(await c.addEntries(frames)), frames.map(() => 'ok'), 'a batch over two ledgers is stored')
    t.same(codes(await c.addEntries(frames.slice(0, 3))), ['ok', 'ok', 'ok'], 'resending the same entries gets the same answer')
    const conflict = entry(1n, 0n, {payload: Buffer.from('other content')})
    t.same(codes(await c.addEntries([conflict])), [ErrorCode.ENTRY_CONFLICT], 'same id, other content: refused')
    t.same(await c.addEntries([]), [], 'an empty batch needs no request')

    const all = await c.readEntries(1n, 0n, 100n)
    t.same(all.map(e => e.entryId), Array.from({length: 20}, (_, i) => BigInt(i)), 'pages of 7 are joined into the whole range')
    t.same(all[13]?.payload, payloadFor(1n, 13n, 100), 'payload byte for byte')
    t.match(all[13], {ledgerId: 1n, entryId: 13n, lac: 12n, digest: frames[13]!.digest})
    const some = await c.readEntries(2n, 1n, 4n, {maxBytes: 2500})
    t.same(some.map(e => e.entryId), [1n, 2n], 'maxBytes: one answer, a prefix')
    t.same((await c.readEntries(2n, 4n, 4n, {maxBytes: 1})).map(e => e.entryId), [4n], 'at least one entry even over maxBytes')
    t.same(await c.readEntries(1n, 50n, 60n), [], 'nothing held in the range')
    await t.rejects(c.readEntries(99n, 0n, 1n), {code: ErrorCode.NO_SUCH_LEDGER})
    await t.rejects(c.readEntries(1n, 5n, 1n), {code: ErrorCode.OUT_OF_RANGE})
  })

  t.test(`${transport}: a large batch is verified on the codec pool`, async t => {
    // The threshold is set here, not taken from the engine's default (which measurements move).
    const b = await localBookie(t, {engine: {verifyOffloadBytes: 512 * 1024}})
    const c = client(t, b.address, transport)
    const frames = Array.from({length: 16}, (_, i) => frame(5n, BigInt(i), 64 * 1024))
    const bad = {...frame(5n, 16n, 64 * 1024), digest: 1}
    t.same(codes(await c.addEntries([...frames, bad])), [...frames.map(() => 'ok'), ErrorCode.BAD_CHECKSUM])
    t.equal(b.engine.status().codecOffloads, 1, 'the 1 MiB body was handed to the pool, not verified inline')
    const back = await c.readEntries(5n, 0n, 15n)
    t.ok(back.every((e, i) => e.payload.equals(frames[i]!.payload)), 'all 16 read back intact')
  })

  t.test(`${transport}: tail reads: the entries up to the bookie's LAC, waiting for them, with the LAC`, async t => {
    const b = await localBookie(t)
    const c = client(t, b.address, transport)
    t.same(await c.readTail(4n, 0n, 0), {entries: [], lac: -1n}, 'a ledger the bookie has not seen: nothing, LAC -1')
    await c.addEntries(Array.from({length: 10}, (_, i) => frame(4n, BigInt(i)))) // entry i carries LAC i - 1
    const now = await c.readTail(4n, 3n, 0)
    t.same(now.entries.map(e => e.entryId), [3n, 4n, 5n, 6n, 7n, 8n], 'up to the LAC (8), not the last entry held (9)')
    t.equal(now.lac, 8n)
    t.same(now.entries[2]?.payload, payloadFor(4n, 5n, 100))
    const waiting = c.readTail(4n, 9n, 30_000)
    await b.engine.add(frame(4n, 10n)) // carries LAC 9
    const woke = await waiting
    t.same([woke.entries.map(e => e.entryId), woke.lac], [[9n], 9n], 'answers when an add moves the LAC, with the entry')
    t.same(await c.readTail(4n, 20n, 50), {entries: [], lac: 9n}, 'at the timeout: nothing, the current LAC')
    t.equal(await c.writeLac(4n, 15n), 15n, 'an explicit LAC beyond the entries this bookie holds')
    const ahead = await c.readTail(4n, 10n, 0)
    t.same([ahead.entries.map(e => e.entryId), ahead.lac], [[10n], 15n], 'the entries it holds, and the LAC it knows')
    const small = await c.readTail(4n, 0n, 0, {maxBytes: 150})
    t.same(small.entries.map(e => e.entryId), [0n], 'maxBytes cuts the answer (at least one entry)')
    await t.rejects(c.readTail(4n, -1n, 0), {code: ErrorCode.OUT_OF_RANGE})
    await t.rejects(c.readTail(4n, 0n, -5), {code: ErrorCode.BAD_INPUT})
  })

  t.test(`${transport}: LAC long poll, fence, recovery adds, delete, status, metrics`, async t => {
    const b = await localBookie(t)
    const c = client(t, b.address, transport)
    t.same(await c.readLac(3n, -1n, 0), {lac: -1n, lastEntryId: -1n}, 'a ledger the bookie has not seen')
    await c.addEntries([frame(3n, 0n), frame(3n, 1n)])
    t.same(await c.readLac(3n, -1n, 1000), {lac: 0n, lastEntryId: 1n}, 'LAC already past `after`: at once')
    const poll = c.readLac(3n, 0n, 30_000)
    await b.engine.add(frame(3n, 2n))
    // It answers as the add carrying LAC 1 arrives (not at its 30 s timeout), which may be before or after
    // that add (entry 2) is durable here: lastEntryId is the last entry held at that moment.
    const answered = await poll
    t.equal(answered.lac, 1n, 'the poll answers when an add moves the LAC')
    t.ok(answered.lastEntryId === 1n || answered.lastEntryId === 2n, `with the last entry held then (${answered.lastEntryId})`)
    t.same(await c.readLac(3n, 5n, 50), {lac: 1n, lastEntryId: 2n}, 'at the timeout: the current values')
    const poll2 = c.readLac(3n, 1n, 30_000)
    t.equal(await c.writeLac(3n, 2n), 2n, 'an explicit LAC from an idle writer')
    t.same(await poll2, {lac: 2n, lastEntryId: 2n}, 'wakes the long poll')
    t.equal(await c.writeLac(3n, 0n), 2n, 'never lowers it')

    t.same(await c.fence(3n), {lac: 2n, lastEntryId: 2n})
    t.same(codes(await c.addEntries([frame(3n, 3n)])), [ErrorCode.FENCED])
    t.same(codes(await c.addEntries([{...frame(3n, 3n), recovery: true}])), ['ok'], 'a recovery add goes through the fence')
    t.same(await c.fence(3n), {lac: 2n, lastEntryId: 3n}, 'fencing again is harmless')

    const status = await c.status()
    t.match(status, {bookieId: b.address, address: b.address, state: 'writable', ledgers: 1, entries: 4})
    t.ok((status['totalBytes'] as number) > 0 && (status['freeBytes'] as number) > 0, 'disk figures from statfs')

    await c.deleteLedger(3n)
    await t.rejects(c.readEntries(3n, 0n, 3n), {code: ErrorCode.NO_SUCH_LEDGER})
    await t.rejects(c.deleteLedger(4n), {code: ErrorCode.NO_SUCH_LEDGER})

    const text = await b.server.metrics.text()
    t.match(text, /logctl_bookie_add_entries_total\{result="ok"\} 3/)
    t.match(text, /logctl_bookie_add_entries_total\{result="error"\} 1/)
    t.match(text, /logctl_journal_fsync_seconds_count [1-9]/, 'fsync latency from the journal channel')
    t.match(text, /logctl_journal_batch_records_count [1-9]/)
    t.match(text, /logctl_journal_queue_depth 0/)
    t.match(text, /logctl_bookie_read_only 0/)
    t.match(text, /logctl_read_cache_hits_total \d/)
    t.match(text, /logctl_bookie_request_seconds_count\{route="lac",status="200"\} 5/)
  })
}

for (const transport of transports) {
  t.test(`${transport}: a batch over the server's body cap is TOO_LARGE for the whole request; the client goes on`, async t => {
    const b = await localBookie(t, {server: {maxBodyBytes: 1024 * 1024}})
    const c = client(t, b.address, transport)
    await t.rejects(c.addEntries(Array.from({length: 20}, (_, i) => frame(6n, BigInt(i), 64 * 1024))), {code: ErrorCode.TOO_LARGE})
    t.same(codes(await c.addEntries([frame(6n, 0n)])), ['ok'], 'the next request on the same connection is served')
  })
}

t.test('two bookies in one process keep their metrics apart', async t => {
  const a = await localBookie(t)
  const b = await localBookie(t)
  const ca = client(t, a.address, 'http2')
  await ca.addEntries([frame(1n, 0n), frame(1n, 1n)])
  t.match(await a.server.metrics.text(), /logctl_journal_batch_records_sum 2/)
  t.match(await b.server.metrics.text(), /logctl_journal_batch_records_count 0/)
})

t.test('a long poll is answered at once when the server shuts down', async t => {
  const b = await localBookie(t)
  const c = client(t, b.address, 'http2')
  await c.addEntries([frame(8n, 0n), frame(8n, 1n)])
  const poll = c.readLac(8n, 5n, 60_000)
  await c.status() // the poll's stream is open on the server once a later request has been answered
  await b.server.close()
  t.same(await poll, {lac: 0n, lastEntryId: 1n})
  await t.rejects(c.status(), {code: ErrorCode.BOOKIE_UNAVAILABLE}, 'and then the bookie is gone')
})

for (const transport of transports) {
  t.test(`${transport}: an unresponsive peer is TIMEOUT, a closed port BOOKIE_UNAVAILABLE, and the client reconnects`, async t => {
    // A TCP listener that accepts and never speaks: what a SIGSTOPped bookie looks like from outside.
    const sockets = new Set<Socket>()
    const mute = createServer(s => sockets.add(s))
    await new Promise<void>(resolve => mute.listen(0, '127.0.0.1', resolve))
    const port = (mute.address() as {port: number}).port
    const c = client(t, `127.0.0.1:${port}`, transport, 1000)
    await t.rejects(c.status(), {code: ErrorCode.TIMEOUT, retriable: true})
    await t.rejects(c.addEntries([frame(1n, 0n)]), {code: ErrorCode.TIMEOUT})
    t.ok(sockets.size >= 2, 'each timeout without a byte heard dropped the connection; the next request made a new one')
    for (const s of sockets) s.destroy()
    await new Promise(resolve => mute.close(resolve))
    await t.rejects(c.status(), {code: ErrorCode.BOOKIE_UNAVAILABLE, retriable: true}, 'nothing listens on the port')

    const b = await localBookie(t, {server: {port}})
    t.same(codes(await c.addEntries([frame(1n, 0n)])), ['ok'], 'a bookie on that port again: the same client works')
    t.equal(b.engine.ledger(1n).entries, 1)
  })
}

t.test('a closed client refuses new requests and cancels those in flight', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  const poll = c.readLac(1n, 0n, 30_000)
  await c.status()
  const cancelled = t.rejects(poll, {code: ErrorCode.CLOSED})
  await c.close()
  await cancelled
  await t.rejects(c.status(), {code: ErrorCode.CLOSED})
  t.throws(() => connectBookie(b.address, {transport: 'spdy' as TransportName}), {code: ErrorCode.BAD_INPUT})
  t.throws(() => connectBookie(b.address, {timeoutMs: 0}), {code: ErrorCode.BAD_INPUT})
})
