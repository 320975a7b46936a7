// Tail streams (GET /v1/ledgers/{id}/tail/stream, src/net/tail-stream.ts): entries pushed in order as the
// LAC moves, heartbeats while it stays put, flow control, bad parameters refused, a shutdown or a malformed
// message failing the client's stream with a typed error, and the server serving on through all of it.
import http2 from 'node:http2'
import type {AddressInfo} from 'node:net'
import t from 'tap'
import {ErrorCode, type LogError} from '../../src/errors.js'
import {connectBookie} from '../../src/net/bookie-client.js'
import {ENVELOPE_HEAD, EnvelopeReader, joined, type Envelope} from '../../src/net/envelope.js'
import {decodeEntries} from '../../src/net/frames.js'
import {tailMessage, type TailStream, type TailUpdate} from '../../src/net/tail-stream.js'
import {entry} from '../helpers/entries.js'
import {localBookie, raw, rawSession, stillServes} from './harness.js'

/** The next update that is not a heartbeat (waiting up to 20 s in all). */
async function nextEntries(s: TailStream): Promise<TailUpdate> {
  const until = Date.now() + 20_000
  while (Date.now() < until) {
    const u = await s.next(1000)
    if (u !== undefined && u.entries.length > 0) return u
  }
  throw new Error('no entries within 20 s')
}

t.test('entries are pushed in order as the LAC moves; a heartbeat carries the LAC while it stays put', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  // Entries 0..2 carry LACs up to 1: the bookie's LAC is 1, so 0 and 1 may go out, 2 not yet.
  t.same((await c.addEntries([0n, 1n, 2n].map(i => entry(7n, i)))).map(r => r.ok), [true, true, true])
  const s = c.tailStream(7n, 0n, {waitMs: 100})!
  t.ok(s, 'node:http2 clients have tail streams')
  t.teardown(() => s.close())
  const first = await nextEntries(s)
  t.same(first.entries.map(e => e.entryId), [0n, 1n], 'only entries up to the LAC')
  t.equal(first.lac, 1n)
  t.ok(first.entries[0]!.payload.equals(entry(7n, 0n).payload), 'the bytes as added')
  const beat = await s.next(20_000)
  t.same(beat && {n: beat.entries.length, lac: beat.lac}, {n: 0, lac: 1n}, 'nothing new within waitMs: a heartbeat with the LAC')
  // The next add carries LAC 2 (entry 3's lac defaults to its id - 1): entry 2 is pushed, 3 waits.
  await c.addEntries([entry(7n, 3n)])
  const second = await nextEntries(s)
  t.same(second.entries.map(e => e.entryId), [2n])
  t.equal(second.lac, 2n)
  // An explicit LAC (an idle writer's) pushes the last one.
  await c.writeLac(7n, 3n)
  t.same((await nextEntries(s)).entries.map(e => e.entryId), [3n])
  t.equal(s.position, 4n)
  s.close()
  await t.rejects(s.next(10), {code: ErrorCode.CLOSED}, 'a closed stream says so')
  await stillServes(t, b)
})

t.test('a stream from further back catches up in pieces of at most maxBytes, then follows', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  const n = 300
  for (let i = 0; i < n; i += 50) await c.addEntries(Array.from({length: 50}, (_, k) => entry(8n, BigInt(i + k), {size: 1000, lac: BigInt(i + k)})))
  const s = c.tailStream(8n, 10n, {waitMs: 1000, maxBytes: 20_000})!
  t.teardown(() => s.close())
  const got: bigint[] = []
  let largest = 0
  while (got.length < n - 10) {
    const u = await nextEntries(s)
    largest = Math.max(largest, u.entries.length)
    got.push(...u.entries.map(e => e.entryId))
  }
  t.same(got, Array.from({length: n - 10}, (_, i) => BigInt(i + 10)), 'every entry from 10 on, once, in order')
  t.ok(largest <= 20, `messages hold at most 20 KB of payload (largest: ${largest} entries of 1000 B)`)
})

t.test('a writer\'s close notice (lac-write closed=1) ends the streams once they have everything: CLOSED, then over', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  await c.addEntries([0n, 1n, 2n, 3n].map(i => entry(9n, i, {lac: i - 1n})))
  // One stream at the end (caught up to entry 2, the LAC), one from the start: a long wait, so only the notice
  // can end them quickly (a heartbeat would come after 60 s).
  const atEnd = c.tailStream(9n, 3n, {waitMs: 60_000})!
  const behind = c.tailStream(9n, 0n, {waitMs: 60_000})!
  t.teardown(() => { atEnd.close(); behind.close() })
  t.same((await nextEntries(behind)).entries.map(e => e.entryId), [0n, 1n, 2n], 'the stream from the start has what the LAC allows')
  t.equal(await c.writeLac(9n, 3n, {closed: true}), 3n, 'the notice raises the LAC to the last entry')
  const last = await atEnd.next(20_000)
  t.same(last && {ids: last.entries.map(e => e.entryId), lac: last.lac, closed: last.closed}, {ids: [3n], lac: 3n, closed: true}, 'the stream at the end: the last entry, flagged CLOSED')
  await t.rejects(atEnd.next(20_000), {code: ErrorCode.LEDGER_CLOSED}, 'then the stream is over: LEDGER_CLOSED, not a failure of the bookie')
  const rest = await behind.next(20_000)
  t.same(rest && {ids: rest.entries.map(e => e.entryId), closed: rest.closed}, {ids: [3n], closed: true}, 'the other stream: the rest, then CLOSED')
  // A stream opened after the notice, at the end, gets CLOSED at once; a LAC poll at the end answers at once.
  const late = c.tailStream(9n, 4n, {waitMs: 60_000})!
  t.teardown(() => late.close())
  const u = await late.next(20_000)
  t.same(u && {n: u.entries.length, closed: u.closed}, {n: 0, closed: true}, 'a stream opened after the notice: CLOSED with nothing')
  t.equal((await c.readLac(9n, 3n, 60_000)).lac, 3n, 'a LAC long poll beyond the end answers at once')
  const session = rawSession(t, b.address)
  const bad = await raw(session, {':method': 'POST', ':path': '/v1/ledgers/9/lac?lac=3&closed=yes'})
  t.equal(bad.json['code'], ErrorCode.BAD_INPUT, 'closed must be 0 or 1')
  await stillServes(t, b)
})

t.test('a follower that stops reading for longer than the silence timeout, then reads on, gets everything', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  // 12 MiB: more than the client queues (8 MiB) before it stops reading, so the stream is paused.
  const n = 12 * 1024
  for (let i = 0; i < n; i += 512) await c.addEntries(Array.from({length: 512}, (_, k) => entry(11n, BigInt(i + k), {size: 1024, lac: BigInt(i + k)})))
  const s = c.tailStream(11n, 0n, {waitMs: 100})!
  t.teardown(() => s.close())
  // Silence allowed: waitMs + 2 s. Nobody reads for longer than that.
  await new Promise(resolve => setTimeout(resolve, 3500))
  let got = 0
  while (got < n) got += (await nextEntries(s)).entries.length
  t.equal(got, n, 'every entry, no TIMEOUT: the time the client did not read is not the bookie\'s silence')
})

t.test('bad parameters are refused before the stream starts (BAD_INPUT, OUT_OF_RANGE); the server keeps serving', async t => {
  const b = await localBookie(t)
  const session = rawSession(t, b.address)
  const cases: Array<[string, string]> = [
    ['7', 'from=x'], ['7', 'waitMs=0&from=0'], ['7', 'from=0&maxBytes=0'], ['7', ''], ['x', 'from=0'],
    ['7', 'from=-1'], ['-3', 'from=0'],
  ]
  for (const [ledger, q] of cases) {
    const a = await raw(session, {':method': 'GET', ':path': `/v1/ledgers/${ledger}/tail/stream?${q}`})
    const code = q === 'from=-1' || ledger === '-3' ? ErrorCode.OUT_OF_RANGE : ErrorCode.BAD_INPUT
    t.equal(a.json['code'], code, `ledger ${ledger} ?${q}: ${code}`)
    t.notOk(a.headers['content-type'] === 'application/x-logctl-stream', 'an error answer, not a stream')
  }
  await stillServes(t, b)
})

t.test('the server shutting down ends the stream: the client gets BOOKIE_UNAVAILABLE', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address)
  t.teardown(() => c.close())
  await c.addEntries([entry(9n, 0n, {lac: 0n})])
  const s = c.tailStream(9n, 0n, {waitMs: 60_000})!
  t.same((await nextEntries(s)).entries.map(e => e.entryId), [0n])
  const closed = b.server.close()
  await t.rejects(s.next(20_000), {code: ErrorCode.BOOKIE_UNAVAILABLE}, 'the stream ended: unavailable (a follower reads elsewhere)')
  await closed
})

/** A peer that answers a tail stream with `bytes` (a misbehaving bookie; the client must not trust it). */
async function peer(t: {teardown: (fn: () => unknown) => void}, bytes: Buffer): Promise<string> {
  const srv = http2.createServer()
  srv.on('stream', stream => {
    stream.respond({':status': 200})
    stream.write(bytes)
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => srv.close(() => resolve())))
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`
}

t.test('a malformed or out-of-order message fails the stream with BAD_FRAME', async t => {
  const e = (id: bigint, ledgerId = 5n): ReturnType<typeof entry> => entry(ledgerId, id, {lac: id})
  const cases: Array<[string, Buffer]> = [
    ['an entry beyond the LAC', tailMessage(0, 0n, [e(0n), e(1n)])],
    ['an entry of another ledger', tailMessage(0, 3n, [e(0n, 6n)])],
    ['entries going backwards', Buffer.concat([tailMessage(0, 3n, [e(0n), e(1n)]), tailMessage(1, 3n, [e(1n)])])],
    ['an unknown status', (() => { const m = tailMessage(0, 0n, [e(0n)]); m[ENVELOPE_HEAD] = 9; return m })()],
    ['a message too short for its LAC', (() => { const m = Buffer.alloc(ENVELOPE_HEAD + 4); m.writeUInt32BE(8, 0); return m })()],
  ]
  for (const [what, bytes] of cases) {
    const c = connectBookie(await peer(t, bytes))
    const s = c.tailStream(5n, 0n, {waitMs: 60_000})!
    let err: LogError | undefined
    for (let i = 0; i < 3 && err === undefined; i++) {
      try {
        await s.next(20_000)
      } catch (x) {
        err = x as LogError
      }
    }
    t.equal(err?.code, ErrorCode.BAD_FRAME, `${what}: BAD_FRAME (${err?.message})`)
    await c.close()
  }
})

t.test('tailMessage: envelope, status, LAC and an ENTRIES message in one buffer', async t => {
  const items = [entry(4n, 0n), entry(4n, 1n)]
  const m = tailMessage(12, 1n, items)
  const got: Envelope[] = []
  new EnvelopeReader(1, 1 << 20).push(m, x => got.push(x))
  t.equal(got.length, 1)
  t.equal(got[0]!.requestId, 12)
  const body = joined(got[0]!)
  t.equal(body[0], 0, 'status OK')
  t.equal(body.readBigInt64BE(1), 1n, 'the LAC')
  t.same(decodeEntries(body.subarray(9)).map(x => [x.entryId, x.payload.toString('hex')]), items.map(x => [x.entryId, x.payload.toString('hex')]))
})
