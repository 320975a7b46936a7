import {connect as tcpConnect} from 'node:net'
import {once} from 'node:events'
import t, {type Test} from 'tap'
import {ErrorCode, WIRE_STATUS, type ErrorCode as Code} from '../../src/errors.js'
import {HEADER_BYTES, MAX_PAYLOAD_BYTES, decodeAddResults, encodeAddBatch} from '../../src/net/frames.js'
import {frame, localBookie, raw, rawSession, stillServes, type RawAnswer} from './harness.js'

const ADD = {':method': 'POST', ':path': '/v1/entries'}

/** The answer is the typed error: HTTP status from WIRE_STATUS, JSON body with code, message, retriable. */
function typed(t: Test, a: RawAnswer, code: Code, what: string): void {
  t.equal(a.status, WIRE_STATUS[code], `${what}: HTTP ${WIRE_STATUS[code]}`)
  t.match(a.json, {code, message: String, retriable: Boolean, detail: Object}, `${what}: ${code}`)
}

t.test('malformed bodies are BAD_FRAME; the session and the server keep serving', async t => {
  const b = await localBookie(t)
  const s = rawSession(t, b.address)
  const good = encodeAddBatch([frame(1n, 0n), frame(1n, 1n)])
  const badMagic = Buffer.from(good)
  badMagic.writeUInt16BE(0xdead, 0)
  typed(t, await raw(s, ADD, [badMagic]), ErrorCode.BAD_FRAME, 'bad magic')
  typed(t, await raw(s, ADD, [good.subarray(0, good.length - 3)]), ErrorCode.BAD_FRAME, 'truncated body')
  typed(t, await raw(s, ADD, [Buffer.concat([good, Buffer.from('junk')])]), ErrorCode.BAD_FRAME, 'trailing junk')
  typed(t, await raw(s, ADD, []), ErrorCode.BAD_FRAME, 'no body at all')
  const lying = Buffer.from(good)
  lying.writeUInt32BE(60_000, HEADER_BYTES + 29) // the first entry claims 60000 bytes; 2 entries of 100 follow
  typed(t, await raw(s, {...ADD, 'content-length': lying.length}, [lying]), ErrorCode.BAD_FRAME, 'a length that lies against content-length')
  // A body shorter than its content-length never reaches a route: nghttp2 resets the stream (PROTOCOL_ERROR).
  await t.rejects(raw(s, {...ADD, 'content-length': good.length + 10}, [good]), {code: 'ERR_HTTP2_STREAM_ERROR'}, 'a content-length that lies: stream reset')
  const ok = await raw(s, ADD, [good])
  t.equal(ok.status, 200, 'the same session then stores a good batch')
  t.same(decodeAddResults(ok.body), [undefined, undefined])
  await stillServes(t, b)
})

t.test('per-entry refusals: checksum, size, fence; ?recovery=1 writes through the fence', async t => {
  const b = await localBookie(t, {engine: {maxEntryBytes: 64 * 1024}})
  const s = rawSession(t, b.address)
  const flipped = {...frame(2n, 1n), digest: frame(2n, 1n).digest ^ 1}
  const a = await raw(s, ADD, [encodeAddBatch([frame(2n, 0n), flipped, frame(2n, 2n, 64 * 1024 + 1), frame(2n, 3n)])])
  t.equal(a.status, 200)
  t.same(decodeAddResults(a.body).map(e => e?.code), [undefined, ErrorCode.BAD_CHECKSUM, ErrorCode.TOO_LARGE, undefined], 'each entry has its own answer')
  await b.engine.fence(2n)
  const fenced = await raw(s, ADD, [encodeAddBatch([frame(2n, 4n)])])
  t.same(decodeAddResults(fenced.body).map(e => e?.code), [ErrorCode.FENCED])
  const recovery = await raw(s, {...ADD, ':path': '/v1/entries?recovery=1'}, [encodeAddBatch([frame(2n, 4n)])])
  t.same(decodeAddResults(recovery.body), [undefined], 'recovery add stored on a fenced ledger')
  t.equal(b.engine.ledger(2n).lastEntryId, 4n)
  await stillServes(t, b)
})

t.test('oversized entries and bodies are TOO_LARGE, answered before the rest is read', async t => {
  const b = await localBookie(t, {server: {maxBodyBytes: 1024 * 1024}})
  const s = rawSession(t, b.address)
  // Only the head of an entry claiming 4 MiB + 1; the request body stays open: the answer comes anyway.
  const head = encodeAddBatch([frame(3n, 0n, 0)])
  head.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, HEADER_BYTES + 29)
  typed(t, await raw(s, ADD, [head], {end: false}), ErrorCode.TOO_LARGE, 'entry over the 4 MiB wire limit')
  const big = encodeAddBatch(Array.from({length: 20}, (_, i) => frame(3n, BigInt(i), 64 * 1024)))
  typed(t, await raw(s, {...ADD, 'content-length': big.length}, [big]), ErrorCode.TOO_LARGE, 'content-length over the body cap')
  typed(t, await raw(s, ADD, [big]), ErrorCode.TOO_LARGE, 'body over the cap without content-length')
  t.throws(() => b.engine.ledger(3n), {code: ErrorCode.NO_SUCH_LEDGER}, 'nothing of the refused bodies was stored')
  await stillServes(t, b)
})

t.test('bad routes, methods and query parameters are typed errors', async t => {
  const b = await localBookie(t)
  const s = rawSession(t, b.address)
  typed(t, await raw(s, {':method': 'GET', ':path': '/nope'}), ErrorCode.BAD_INPUT, 'unknown route')
  typed(t, await raw(s, {':method': 'PUT', ':path': '/v1/entries'}, [Buffer.from('x')]), ErrorCode.BAD_INPUT, 'wrong method (with a body)')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/entries?from=abc&to=1'}), ErrorCode.BAD_INPUT, 'non-numeric from')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/entries?to=1'}), ErrorCode.BAD_INPUT, 'missing from')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/entries?from=0&to=1&maxBytes=0'}), ErrorCode.BAD_INPUT, 'maxBytes 0')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/18446744073709551616/lac'}), ErrorCode.OUT_OF_RANGE, 'ledger id over 2^64-1')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/lac?waitMs=999999999'}), ErrorCode.BAD_INPUT, 'waitMs over the cap')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/tail?waitMs=0'}), ErrorCode.BAD_INPUT, 'tail read without from')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/tail?from=0&waitMs=999999999'}), ErrorCode.BAD_INPUT, 'tail read waitMs over the cap')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/tail?from=0&maxBytes=0'}), ErrorCode.BAD_INPUT, 'tail read maxBytes 0')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9/entries?from=0&to=1'}), ErrorCode.NO_SUCH_LEDGER, 'unknown ledger')
  typed(t, await raw(s, {':method': 'GET', ':path': '/v1/ledgers/9'}), ErrorCode.NO_SUCH_LEDGER, 'unknown ledger info')
  const m = await raw(s, {':method': 'GET', ':path': '/metrics'})
  t.match(m.body.toString(), /logctl_bookie_request_seconds_count\{route="unknown",status="400"\} 2/, 'refusals are counted')
  await stillServes(t, b)
})

t.test('a peer that stalls mid-body gets TIMEOUT; other streams on its session are served meanwhile', async t => {
  const b = await localBookie(t, {server: {bodyTimeoutMs: 300}})
  const s = rawSession(t, b.address)
  const body = encodeAddBatch([frame(4n, 0n, 1000), frame(4n, 1n, 1000)])
  const stalled = raw(s, ADD, [body.subarray(0, 700)], {end: false})
  const other = await raw(s, ADD, [encodeAddBatch([frame(4n, 5n)])])
  t.same(decodeAddResults(other.body), [undefined], 'another add on the same session, while the first stalls')
  typed(t, await stalled, ErrorCode.TIMEOUT, 'stalled body')
  t.equal(b.engine.ledger(4n).entries, 1, 'nothing of the stalled batch was stored')
  await stillServes(t, b)
})

t.test('junk that is not HTTP/2 costs its own connection only', async t => {
  const b = await localBookie(t)
  const sock = tcpConnect(Number(b.address.split(':')[1]), '127.0.0.1')
  sock.on('error', () => undefined)
  await once(sock, 'connect')
  sock.resume() // read what the server sends (its SETTINGS, then a GOAWAY) so that its close is seen
  sock.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(sock, 'close')
  t.pass('the server closed the junk connection')
  await stillServes(t, b)
})
