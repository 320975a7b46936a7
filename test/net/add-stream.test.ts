// Add streams (POST /v1/entries/stream, src/net/envelope.ts): answers by request id, a bad message refused
// alone, a broken envelope or a stalled message ending only that stream, shutdown, and the envelope reader
// itself (any split of the bytes, bounds checked before anything is kept).
import type {ClientHttp2Session, ClientHttp2Stream} from 'node:http2'
import t from 'tap'
import {ErrorCode} from '../../src/errors.js'
import {ADD_STREAM_PATH, SharedBatch} from '../../src/net/add-stream.js'
import {connectBookie} from '../../src/net/bookie-client.js'
import {ENVELOPE_HEAD, EnvelopeReader, FATAL_REQUEST_ID, ONE_WAY_REQUEST_ID, RequestStatus, envelope, joined, type Envelope} from '../../src/net/envelope.js'
import {decodeAddResults, DIGEST_AT_ENCODE, encodeAddBatch, encodeLacHints, HEADER_BYTES} from '../../src/net/frames.js'
import {Conditions} from '../helpers/conditions.js'
import {entry} from '../helpers/entries.js'
import {frame, localBookie, raw, rawSession, stillServes} from './harness.js'

interface Answer { requestId: number; status: number; body: Buffer }

/** A raw add stream: what was answered so far, and whether the bookie ended its side. */
class RawStream extends Conditions {
  readonly answers: Answer[] = []
  ended = false
  readonly stream: ClientHttp2Stream
  private readonly reader = new EnvelopeReader(1, 1 << 30)

  constructor(session: ClientHttp2Session) {
    super()
    this.stream = session.request({':method': 'POST', ':path': ADD_STREAM_PATH}, {endStream: false})
    this.stream.on('data', (c: Buffer) => {
      this.reader.push(c, (e: Envelope) => {
        const b = joined(e)
        this.answers.push({requestId: e.requestId, status: b[0]!, body: b.subarray(1)})
      })
      this.notify()
    })
    this.stream.on('end', () => { this.ended = true; this.notify() })
    this.stream.on('close', () => { this.ended = true; this.notify() })
    this.stream.on('error', () => undefined)
  }

  answer(requestId: number): Answer | undefined {
    return this.answers.find(a => a.requestId === requestId)
  }

  error(requestId: number): Record<string, unknown> {
    return JSON.parse(this.answer(requestId)!.body.toString('utf8')) as Record<string, unknown>
  }
}

t.test('answers come by request id; a message that does not decode is refused alone and the stream goes on', async t => {
  const b = await localBookie(t)
  const s = new RawStream(rawSession(t, b.address))
  const good = encodeAddBatch([frame(10n, 0n), frame(10n, 1n)])
  const badMagic = Buffer.from(good)
  badMagic.writeUInt16BE(0xdead, 0)
  const flipped = {...frame(10n, 3n), digest: (frame(10n, 3n).digest ^ 1) >>> 0}
  // Three messages in one write, then one more delivered a byte at a time.
  s.stream.write(Buffer.concat([envelope(7, good), envelope(8, badMagic), envelope(9, encodeAddBatch([frame(10n, 2n), flipped]))]))
  for (const byte of envelope(11, encodeAddBatch([frame(10n, 4n)]))) s.stream.write(Buffer.from([byte]))
  await s.until(() => s.answers.length === 4, 'four answers')
  t.equal(s.answer(7)?.status, RequestStatus.OK)
  t.same(decodeAddResults(s.answer(7)!.body), [undefined, undefined], 'request 7: both stored')
  t.equal(s.answer(8)?.status, RequestStatus.REFUSED, 'request 8 refused as a whole')
  t.match(s.error(8), {code: ErrorCode.BAD_FRAME, message: /magic/})
  t.same(decodeAddResults(s.answer(9)!.body).map(e => e?.code), [undefined, ErrorCode.BAD_CHECKSUM], 'request 9: per-entry answers')
  t.same(decodeAddResults(s.answer(11)!.body), [undefined], 'a message split into single bytes is stored')
  t.equal(b.engine.ledger(10n).entries, 4, 'entries 0, 1, 2 and 4 are held; the corrupt 3 is not')
  s.stream.end()
  await s.until(() => s.ended, 'the bookie ends its side once the client ended and everything is answered')
  await stillServes(t, b, 900n)
})

t.test('a broken envelope ends that stream with a FATAL answer; the session and the server keep serving', async t => {
  const b = await localBookie(t, {server: {maxBodyBytes: 64 * 1024}})
  const session = rawSession(t, b.address)
  const short = new RawStream(session)
  const head = Buffer.alloc(ENVELOPE_HEAD)
  head.writeUInt32BE(4 + HEADER_BYTES - 1, 0) // shorter than any ADD_BATCH message
  short.stream.write(head)
  await short.until(() => short.ended, 'the stream ends')
  t.equal(short.answer(FATAL_REQUEST_ID)?.status, RequestStatus.REFUSED)
  t.match(short.error(FATAL_REQUEST_ID), {code: ErrorCode.BAD_FRAME})

  const big = new RawStream(session)
  const claim = Buffer.alloc(ENVELOPE_HEAD)
  claim.writeUInt32BE(4 + 64 * 1024 + 1, 0) // over maxBodyBytes: refused from the head, before any body
  claim.writeUInt32BE(5, 4)
  big.stream.write(claim)
  await big.until(() => big.ended, 'the stream ends')
  t.match(big.error(FATAL_REQUEST_ID), {code: ErrorCode.TOO_LARGE, detail: {requestId: 5}})

  const ok = new RawStream(session)
  ok.stream.write(envelope(1, encodeAddBatch([frame(11n, 0n)])))
  await ok.until(() => ok.answers.length === 1, 'a new stream on the same session is served')
  t.same(decodeAddResults(ok.answer(1)!.body), [undefined])
  await stillServes(t, b, 900n)
})

t.test('a message stalled midway is a TIMEOUT; idle time between messages is not', async t => {
  const b = await localBookie(t, {server: {bodyTimeoutMs: 300}})
  const session = rawSession(t, b.address)
  const idle = new RawStream(session)
  idle.stream.write(envelope(1, encodeAddBatch([frame(12n, 0n)])))
  await idle.until(() => idle.answers.length === 1, 'first answer')
  await new Promise(resolve => setTimeout(resolve, 700))
  t.notOk(idle.ended, 'an idle stream stays open past bodyTimeoutMs')
  idle.stream.write(envelope(2, encodeAddBatch([frame(12n, 1n)])))
  await idle.until(() => idle.answers.length === 2, 'second answer after the idle time')
  t.same(decodeAddResults(idle.answer(2)!.body), [undefined])

  const stalled = new RawStream(session)
  const msg = envelope(3, encodeAddBatch([frame(12n, 2n)]))
  stalled.stream.write(msg.subarray(0, msg.length - 10))
  await stalled.until(() => stalled.ended, 'the stalled stream ends')
  t.match(stalled.error(FATAL_REQUEST_ID), {code: ErrorCode.TIMEOUT})
  t.equal(b.engine.ledger(12n).entries, 2, 'nothing of the stalled message was stored')
  await stillServes(t, b, 900n)
})

t.test('the client: a bookie shutting down answers what it took, then the next batch is BOOKIE_UNAVAILABLE', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address, {timeoutMs: 5000})
  t.teardown(() => c.close())
  const first = await c.addEntries([frame(13n, 0n), frame(13n, 1n)])
  t.same(first.map(r => r.ok), [true, true])
  await b.server.close()
  await t.rejects(c.addEntries([frame(13n, 2n)]), {code: ErrorCode.BOOKIE_UNAVAILABLE})
  await t.rejects(c.addEntries([{...frame(13n, 3n), digest: -2}]), {code: ErrorCode.BAD_INPUT}, 'bad input is refused before anything is sent')
  await c.close()
  await t.rejects(c.addEntries([frame(13n, 4n)]), {code: ErrorCode.CLOSED})
})

t.test('a batch shared by two bookies is encoded once for both; every entry reaches both intact while buffers are reused', async t => {
  const bookies = [await localBookie(t), await localBookie(t)]
  const clients = bookies.map(b => connectBookie(b.address, {timeoutMs: 5000}))
  t.teardown(() => Promise.all(clients.map(c => c.close())))
  const shares: SharedBatch[] = []
  let next = 0
  // 40 batches of 20 entries, 8 in flight at a time: answered bodies go back to the spares and are reused
  // while others are still being sent.
  for (let wave = 0; wave < 5; wave++) {
    await Promise.all(Array.from({length: 8}, async () => {
      const items = Array.from({length: 20}, () => ({...frame(21n, BigInt(next++), 100 + (next % 7) * 50), digest: DIGEST_AT_ENCODE}))
      const shared = new SharedBatch()
      shared.senders = 2
      shares.push(shared)
      const answers = await Promise.all(clients.map(c => c.addEntries(items, shared)))
      for (const a of answers) if (!a.every(r => r.ok)) throw new Error('an add was refused')
    }))
  }
  t.ok(shares.every(s => s.body !== undefined && s.body.senders === 2 && s.body.done === 2), 'each batch: one body, sent and answered on both streams')
  let intact = 0
  for (const b of bookies) {
    for (let i = 0; i < next; i++) {
      const want = frame(21n, BigInt(i), 100 + ((i + 1) % 7) * 50)
      const got = await b.engine.read(21n, BigInt(i))
      if (got.payload.equals(want.payload) && got.digest === want.digest) intact++
    }
  }
  t.equal(intact, 2 * next, 'every entry on both bookies, with the digest computed at the one encode')
})

t.test('a shared batch sent twice on one stream while the first is in flight is encoded again (request ids stay unique there)', async t => {
  const b = await localBookie(t)
  const c = connectBookie(b.address, {timeoutMs: 5000})
  t.teardown(() => c.close())
  const items = [frame(22n, 0n), frame(22n, 1n)]
  const shared = new SharedBatch()
  shared.senders = 2
  const answers = await Promise.all([c.addEntries(items, shared), c.addEntries(items, shared)])
  t.same(answers.map(a => a.map(r => r.ok)), [[true, true], [true, true]], 'both answered (the second add of each entry joins the first)')
  t.equal(b.engine.ledger(22n).entries, 2)
})

/** A LAC_HINTS message in its one-way envelope. */
const hint = (ledgerId: bigint, lac: bigint): Buffer => envelope(ONE_WAY_REQUEST_ID, encodeLacHints([{ledgerId, lac}]))
/** Adds that carry no LAC of their own (-1), so that only hints move it. */
const adds = (ledgerId: bigint, ids: number[]): Buffer => encodeAddBatch(ids.map(i => entry(ledgerId, BigInt(i), {lac: -1n})))

t.test('a LAC hint raises the LAC as far as the bookie holds every entry; never answered; a bad one is dropped', async t => {
  const b = await localBookie(t)
  await b.engine.addBatch([entry(13n, 0n)])
  await b.engine.deleteLedger(13n)
  const s = new RawStream(rawSession(t, b.address))
  s.stream.write(Buffer.concat([
    envelope(1, adds(10n, [0, 1, 2, 4])),
    hint(10n, 9n), // held: 0, 1, 2 and 4, so 2
    hint(11n, 5n), // a ledger it holds nothing of: left alone
    hint(13n, 0n), // a deleted one: left alone
    envelope(ONE_WAY_REQUEST_ID, encodeLacHints([{ledgerId: 10n, lac: 3n}]).subarray(0, HEADER_BYTES + 3)), // truncated: dropped
    envelope(2, adds(12n, [0])),
  ]))
  await s.until(() => s.answers.length === 2, 'both batches answered')
  t.same(s.answers.map(a => a.requestId).sort(), [1, 2], 'the hints got no answer (theirs would have come before batch 2\'s)')
  t.equal(b.engine.ledger(10n).lac, 2n, 'LAC 2: entry 3 is missing here, so a hint of 9 stops below it')
  t.throws(() => b.engine.ledger(11n), {code: ErrorCode.NO_SUCH_LEDGER}, 'no ledger made up for a hint')
  t.throws(() => b.engine.ledger(13n), {code: ErrorCode.NO_SUCH_LEDGER}, 'a deleted ledger stays deleted')
  t.notOk(s.ended, 'the stream goes on after a hint that did not decode')
  s.stream.write(hint(10n, 9n))
  s.stream.write(envelope(3, adds(10n, [3])))
  await s.until(() => s.answer(3) !== undefined, 'batch 3 answered')
  t.equal(b.engine.ledger(10n).lac, 2n, 'the hint before entry 3 arrived still found it missing')
  s.stream.write(hint(10n, 9n))
  t.equal(await b.engine.waitForLac(10n, 2n, 20_000), 4n, 'once it is held, the next hint reaches 4 (and no further)')
  const m = (await raw(rawSession(t, b.address), {':method': 'GET', ':path': '/metrics'})).body.toString()
  t.match(m, /logctl_bookie_request_seconds_count\{route="lac-hint",status="200"\} 5\b/, 'five hints applied')
  t.match(m, /logctl_bookie_request_seconds_count\{route="lac-hint",status="400"\} 1\b/, 'one dropped as a bad frame')
  await stillServes(t, b, 900n)
})

t.test('a LAC hint counts entries the bookie received but has not made durable yet', async t => {
  // A journal that holds each batch back for a second: the hint arrives with the batch, while its adds are
  // on their way to the journal, and the LAC wait below resolves in that same turn, before any timer.
  const b = await localBookie(t, {engine: {maxWaitMicros: 1_000_000}})
  const s = new RawStream(rawSession(t, b.address))
  s.stream.write(Buffer.concat([envelope(1, adds(20n, [0, 1, 2])), hint(20n, 2n)]))
  t.equal(await b.engine.waitForLac(20n, -1n, 20_000), 2n, 'LAC 2 from the hint')
  t.equal(b.engine.ledger(20n).entries, 0, 'while none of the three is durable yet')
  await s.until(() => s.answer(1) !== undefined, 'the batch is answered once durable')
  t.equal(b.engine.ledger(20n).entries, 3)
})

t.test('EnvelopeReader: any split gives the same messages; lengths are checked from the head', async t => {
  const msgs = [envelope(1, Buffer.from('a')), envelope(2, Buffer.alloc(3000, 7)), envelope(3, Buffer.from('xyz'))]
  const all = Buffer.concat(msgs)
  const read = (chunks: Buffer[]): Array<[number, string]> => {
    const r = new EnvelopeReader(1, 4096)
    const out: Array<[number, string]> = []
    for (const c of chunks) r.push(c, e => out.push([e.requestId, joined(e).toString('hex')]))
    t.notOk(r.partial)
    return out
  }
  const whole = read([all])
  t.equal(whole.length, 3)
  t.same(read([...all].map(x => Buffer.from([x]))), whole, 'byte at a time')
  for (const cut of [1, 7, 8, 9, 13, 3000]) t.same(read([all.subarray(0, cut), all.subarray(cut)]), whole, `split at ${cut}`)
  const r = new EnvelopeReader(1, 16)
  const tooBig = Buffer.alloc(ENVELOPE_HEAD)
  tooBig.writeUInt32BE(4 + 17, 0)
  t.throws(() => r.push(tooBig, () => t.fail('no message')), {code: ErrorCode.TOO_LARGE})
  t.throws(() => r.push(Buffer.from('x'), () => undefined), {code: ErrorCode.TOO_LARGE}, 'a failed reader stays failed')
  const zero = Buffer.alloc(ENVELOPE_HEAD)
  t.throws(() => new EnvelopeReader(1, 16).push(zero, () => undefined), {code: ErrorCode.BAD_FRAME}, 'a length below the smallest message')
  const partial = new EnvelopeReader(1, 16)
  partial.push(envelope(1, Buffer.from('abc')).subarray(0, 9), () => t.fail('not complete'))
  t.ok(partial.partial, 'inside a message')
})
