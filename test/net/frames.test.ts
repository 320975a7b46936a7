import t from 'tap'
import {crc, digestOf, entryDigest} from '../../src/checksum.js'
import {ErrorCode, LogError, isLogError} from '../../src/errors.js'
import {
  DIGEST_AT_ENCODE, FrameDecoder, FrameKind, HEADER_BYTES, VERSION, MAX_ERROR_BYTES, MAX_PAYLOAD_BYTES, addBatchDecoder, addResultsDecoder, decodeAddBatch, decodeAddResults, decodeEntries,
  decodeLacHints, encodeAddBatch, encodeAddResults, encodeEntries, encodeLacHints, entriesDecoder, messageKind, type AddItem, type EntryItem,
} from '../../src/net/frames.js'

/** A deterministic PRNG so that a failing fuzz case can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function add(ledgerId: bigint, entryId: bigint, size: number, extra: Partial<AddItem> = {}): AddItem {
  const payload = Buffer.alloc(size, Number(entryId % 251n))
  const lac = entryId - 1n
  return {ledgerId, entryId, lac, payload, digest: entryDigest(ledgerId, entryId, lac, payload), ...extra}
}

const adds: AddItem[] = [
  add(1n, 0n, 0),
  add(1n, 1n, 10, {recovery: true}),
  add(2n ** 64n - 1n, 2n ** 53n - 1n, 300, {compress: true}),
  add(7n, 3n, 1, {recovery: true, compress: true}),
]
const entries: EntryItem[] = adds.map(({ledgerId, entryId, lac, payload, digest}) => ({ledgerId, entryId, lac, payload, digest}))
const outcomes = [undefined, new LogError(ErrorCode.FENCED, 'ledger 1 is fenced', {detail: {ledgerId: '1'}}), undefined, new LogError(ErrorCode.BAD_CHECKSUM, 'x'.repeat(20_000))]

/** Decoded items without the `signed` view (checked on its own below), to compare with what was encoded. */
function plain<T extends {signed?: Buffer | undefined}>(items: T[]): Array<Omit<T, 'signed'>> {
  return items.map(({signed: _signed, ...rest}) => rest)
}

/** A decode that must fail: returns the LogError (anything else fails the test). */
function failure(fn: () => unknown): LogError | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    if (!isLogError(err)) throw err
    return err
  }
}

function feed<T>(d: FrameDecoder<T>, buf: Buffer, step: number): T[] {
  for (let o = 0; o < buf.length; o += step) d.push(buf.subarray(o, Math.min(buf.length, o + step)))
  return d.end().items
}

t.test('round trips of the three message kinds', async t => {
  t.same(plain(decodeAddBatch(encodeAddBatch(adds))), adds)
  t.same(plain(decodeEntries(encodeEntries(entries))), entries)
  const back = decodeAddResults(encodeAddResults(outcomes))
  t.equal(back.length, 4)
  t.equal(back[0], undefined)
  t.match(back[1], {code: ErrorCode.FENCED, message: 'ledger 1 is fenced', detail: {ledgerId: '1'}})
  t.equal(back[2], undefined)
  t.equal(back[3]?.code, ErrorCode.BAD_CHECKSUM, 'an error too long for its slot keeps its code (message cut)')
  t.same(decodeAddBatch(encodeAddBatch([])), [])
})

t.test('LAC hints: round trip, bounds, and the kind of a message read from its first bytes, however split', async t => {
  const hints = [{ledgerId: 1n, lac: -1n}, {ledgerId: 2n ** 64n - 1n, lac: 2n ** 53n - 1n}, {ledgerId: 7n, lac: 42n}]
  const m = encodeLacHints(hints)
  t.same(decodeLacHints(m), hints)
  t.same(decodeLacHints(encodeLacHints([])), [])
  t.equal(m.length, HEADER_BYTES + 3 * 16)
  const below = Buffer.from(m)
  below.writeBigInt64BE(-2n, HEADER_BYTES + 8)
  t.equal(failure(() => decodeLacHints(below))?.code, ErrorCode.OUT_OF_RANGE, 'a LAC below -1')
  t.equal(failure(() => decodeLacHints(m.subarray(0, m.length - 1)))?.code, ErrorCode.BAD_FRAME, 'a truncated hint')
  t.equal(failure(() => decodeLacHints(encodeAddBatch(adds)))?.code, ErrorCode.BAD_FRAME, 'an add batch is not a LAC_HINTS message')
  t.equal(failure(() => decodeAddBatch(m))?.code, ErrorCode.BAD_FRAME, 'nor the other way round')
  for (let cut = 0; cut <= 4; cut++) {
    t.equal(messageKind([m.subarray(0, cut), m.subarray(cut)]), FrameKind.LAC_HINTS, `header split after ${cut} bytes`)
  }
  t.equal(messageKind([m.subarray(0, 1), m.subarray(1, 2), m.subarray(2, 3), m.subarray(3)]), FrameKind.LAC_HINTS)
  t.equal(messageKind([encodeAddBatch(adds)]), FrameKind.ADD_BATCH)
  t.equal(messageKind([m.subarray(0, 3)]), undefined, 'three bytes do not reach the kind')
})

t.test('an add given in two parts (prefix, payload) travels as one entry with the digest of the two', async t => {
  const prefix = Buffer.from('0123456789abcdef')
  const payload = Buffer.from('the caller bytes, not copied by the sender')
  const whole = Buffer.concat([prefix, payload])
  const item: AddItem = {ledgerId: 5n, entryId: 9n, lac: 8n, payload, prefix, digest: DIGEST_AT_ENCODE}
  const [back] = plain(decodeAddBatch(encodeAddBatch([item])))
  const digest = entryDigest(5n, 9n, 8n, whole)
  t.equal(item.digest, digest, 'the digest of the parts is the digest of the whole')
  t.same(back, {ledgerId: 5n, entryId: 9n, lac: 8n, payload: whole, digest}, 'decoded as one payload')
  const big = Buffer.alloc(MAX_PAYLOAD_BYTES)
  t.equal(failure(() => encodeAddBatch([{ledgerId: 5n, entryId: 9n, lac: 8n, payload: big, prefix, digest: 0}]))?.code, ErrorCode.TOO_LARGE, 'the limit counts both parts')
})

t.test('DIGEST_AT_ENCODE: the encoder computes the digest from the bytes it writes and keeps it on the item', async t => {
  const items = adds.map(a => ({...a}))
  const deferred: AddItem[] = items.map(a => ({...a, digest: DIGEST_AT_ENCODE}))
  const prefix = Buffer.from('0123456789abcdef')
  const payload = Buffer.from('the caller bytes')
  const twoParts: AddItem = {ledgerId: 5n, entryId: 9n, lac: 8n, payload, prefix, digest: DIGEST_AT_ENCODE}
  const wholeDigest = entryDigest(5n, 9n, 8n, Buffer.concat([prefix, payload]))
  const want = encodeAddBatch([...items, {ledgerId: 5n, entryId: 9n, lac: 8n, payload, prefix, digest: wholeDigest}])
  t.ok(encodeAddBatch([...deferred, twoParts]).equals(want), 'the same message as with the digests given')
  t.same([...deferred, twoParts].map(x => x.digest), [...items.map(x => x.digest), wholeDigest], 'each item now carries its digest')
  t.ok(encodeAddBatch([...deferred, twoParts]).equals(want), 'a second encode (another bookie, a resend) uses it')
  t.equal(failure(() => encodeAddBatch([{...items[0]!, digest: -2}]))?.code, ErrorCode.BAD_INPUT, 'any other negative digest is bad input')
})

t.test('byte at a time (and every other chunk size) gives the same items', async t => {
  const a = encodeAddBatch(adds)
  const e = encodeEntries(entries)
  const r = encodeAddResults(outcomes)
  for (const step of [1, 2, 3, 7, 33, 64, 1000]) {
    t.same(plain(feed(addBatchDecoder(), a, step)), adds, `adds, ${step} bytes at a time`)
    t.same(plain(feed(entriesDecoder({expectedBytes: e.length}), e, step)), entries, `entries, ${step} bytes at a time`)
    t.same(feed(addResultsDecoder(), r, step).map(x => x?.code), outcomes.map(x => x?.code), `results, ${step} bytes at a time`)
  }
  const d = addBatchDecoder()
  const large = encodeAddBatch([add(3n, 0n, 5000), add(3n, 1n, 5000)])
  for (let i = 0; i < large.length; i++) d.push(large.subarray(i, i + 1))
  const {body, owned} = d.end()
  t.ok(owned && body !== undefined && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength, 'a concatenated body owns its ArrayBuffer (transferable)')
  // Below joinFrom, a message in several chunks is not joined: items are views of the chunks, an item
  // split across chunks (heads too) is copied, and the result is the same at every split.
  const items = [add(4n, 0n, 3000), add(4n, 1n, 0), add(4n, 2n, 10), add(4n, 3n, 4000)]
  const whole = encodeAddBatch(items)
  for (const step of [1, 7, 33, 1000, 4096]) {
    const v = addBatchDecoder({joinFrom: 1 << 20})
    for (let i = 0; i < whole.length; i += step) v.push(whole.subarray(i, i + step))
    const out = v.end()
    t.equal(out.body, undefined, `${step} bytes at a time: no joined body`)
    t.notOk(out.owned)
    t.same(out.items.map(x => [x.ledgerId, x.entryId, x.lac, x.digest, x.payload.toString('hex')]), items.map(x => [x.ledgerId, x.entryId, x.lac, x.digest, x.payload.toString('hex')]), `${step} bytes at a time: the same items`)
  }
  const single = addBatchDecoder()
  single.push(a)
  t.notOk(single.end().owned, 'a single chunk is the caller\'s: never marked transferable')
})

t.test('decoded entries carry the bytes their digest covers, in one piece, at every split', async t => {
  const items = [add(4n, 0n, 3000), add(4n, 1n, 0), add(2n ** 64n - 1n, 2n ** 53n - 1n, 10), add(4n, 3n, 4000)]
  const stored: EntryItem[] = items.map(({ledgerId, entryId, lac, payload, digest}) => ({ledgerId, entryId, lac, payload, digest}))
  const wire = {adds: encodeAddBatch(items), entries: encodeEntries(stored)}
  for (const step of [1, 7, 33, 1000, 4096, 1 << 20]) {
    for (const joinFrom of [0, 1 << 20]) {
      const got = [
        ...feed(addBatchDecoder({joinFrom}), wire.adds, step),
        ...feed(entriesDecoder({joinFrom}), wire.entries, step),
      ]
      const ok = got.every((x, i) => {
        const want = items[i % items.length]!
        return x.signed !== undefined && x.signed.length === 28 + want.payload.length && crc(x.signed) === want.digest && digestOf(x) === want.digest
      })
      t.ok(ok, `${step} bytes at a time, joinFrom ${joinFrom}: one CRC over signed gives each digest`)
    }
  }
  const [one] = decodeEntries(wire.entries)
  // What digestOf vouches for is the payload it is given: `signed` counts only when it ends with those very bytes.
  const p = one!.payload
  // The same bytes but one, at the same offset of another ArrayBuffer, and in the same buffer at another offset.
  const other = Buffer.alloc(p.byteOffset + p.length).subarray(p.byteOffset)
  p.copy(other)
  other[0] = other[0]! ^ 1
  t.not(digestOf({...one!, payload: other}), one!.digest, 'a payload in other memory (one byte off) is checked on its own, not by signed')
  t.not(digestOf({...one!, payload: one!.signed!.subarray(0, p.length)}), one!.digest, 'a payload elsewhere in the same buffer is checked on its own')
  t.equal(digestOf({...one!, signed: undefined}), one!.digest, 'without signed, the digest is computed from the fields')
  const flipped = Buffer.from(wire.entries)
  flipped[HEADER_BYTES + 4 + 8 + 7] = flipped[HEADER_BYTES + 4 + 8 + 7]! ^ 1 // the first entry's id, low byte
  const [bad] = decodeEntries(flipped)
  t.not(digestOf(bad!), one!.digest, 'a changed id on the wire no longer matches the digest')
})

t.test('every truncation is BAD_FRAME, at end() when no length says more', async t => {
  const a = encodeAddBatch(adds)
  for (let n = 0; n < a.length; n++) {
    const d = addBatchDecoder()
    d.push(a.subarray(0, n))
    const err = failure(() => d.end())
    if (err?.code !== ErrorCode.BAD_FRAME) t.fail(`prefix of ${n} bytes: ${err?.code ?? 'decoded'}`)
    if (failure(() => decodeAddBatch(a.subarray(0, n)))?.code !== ErrorCode.BAD_FRAME) t.fail(`one-shot prefix of ${n} bytes`)
  }
  t.pass(`${a.length} prefixes refused`)
})

t.test('malformed headers, flags, statuses and trailing bytes are BAD_FRAME', async t => {
  const a = encodeAddBatch(adds)
  const mutate = (fn: (b: Buffer) => void, buf = a): Buffer => {
    const b = Buffer.from(buf)
    fn(b)
    return b
  }
  const cases: Array<[string, Buffer]> = [
    ['bad magic', mutate(b => b.writeUInt16BE(0x1234, 0))],
    ['bad version', mutate(b => b.writeUInt8(9, 2))],
    ['wrong kind', mutate(b => b.writeUInt8(3, 3))],
    ['count larger than the bytes can hold', mutate(b => b.writeUInt32BE(0xffffffff, 4))],
    ['count one too many', mutate(b => b.writeUInt32BE(adds.length + 1, 4))],
    ['count one too few (stray bytes)', mutate(b => b.writeUInt32BE(adds.length - 1, 4))],
    ['unknown flag bits', mutate(b => b.writeUInt8(0x80, HEADER_BYTES))],
    ['a length that lies (longer than the rest)', mutate(b => b.writeUInt32BE(1_000_000, HEADER_BYTES + 29))],
    ['trailing junk', Buffer.concat([a, Buffer.from([0])])],
  ]
  for (const [name, buf] of cases) t.equal(failure(() => decodeAddBatch(buf))?.code, ErrorCode.BAD_FRAME, name)
  const r = encodeAddResults([undefined, new LogError(ErrorCode.FENCED, 'f')])
  t.equal(failure(() => decodeAddResults(mutate(b => b.writeUInt8(7, HEADER_BYTES), r)))?.code, ErrorCode.BAD_FRAME, 'unknown add status')
  t.equal(failure(() => decodeAddResults(mutate(b => b.writeUInt8(1, HEADER_BYTES), r)))?.code, ErrorCode.BAD_FRAME, 'error status without an error')
  const notJson = mutate(b => b.fill(0x7b, r.length - 5), r)
  t.equal(failure(() => decodeAddResults(notJson))?.code, ErrorCode.BAD_FRAME, 'an error that is not JSON')
})

t.test('hard maximums: TOO_LARGE before anything is kept for the item', async t => {
  // A head announcing a 4 MiB + 1 payload, followed by nothing: refused on the head alone.
  const head = encodeAddBatch([add(1n, 0n, 0)])
  head.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, HEADER_BYTES + 29)
  const d = addBatchDecoder({maxBytes: 64 * 1024 * 1024})
  t.equal(failure(() => d.push(head))?.code, ErrorCode.TOO_LARGE, 'payload over the wire limit')
  t.equal(failure(() => d.push(Buffer.alloc(1)))?.code, ErrorCode.TOO_LARGE, 'a failed decoder stays failed')
  t.equal(failure(() => encodeAddBatch([add(1n, 0n, MAX_PAYLOAD_BYTES + 1)]))?.code, ErrorCode.TOO_LARGE, 'the encoder refuses it too')
  const big = encodeAddBatch([add(1n, 0n, 5000)])
  t.equal(failure(() => feed(addBatchDecoder({maxBytes: 4096}), big, 1000))?.code, ErrorCode.TOO_LARGE, 'body over the cap, streamed')
  t.equal(failure(() => addBatchDecoder({maxBytes: 4096, expectedBytes: 5000}).push(Buffer.alloc(1)))?.code, ErrorCode.TOO_LARGE, 'declared length over the cap')
  t.equal(failure(() => feed(addBatchDecoder({expectedBytes: big.length - 1}), big, 1000))?.code, ErrorCode.BAD_FRAME, 'more bytes than declared')
  t.equal(failure(() => feed(addBatchDecoder({expectedBytes: big.length + 1}), big, 1000))?.code, ErrorCode.BAD_FRAME, 'fewer bytes than declared')
  const r = encodeAddResults([new LogError(ErrorCode.FENCED, 'f')])
  r.writeUInt32BE(MAX_ERROR_BYTES + 1, HEADER_BYTES + 1)
  t.equal(failure(() => addResultsDecoder().push(r))?.code, ErrorCode.BAD_FRAME, 'an error over 8 KiB is a broken frame, not TOO_LARGE')
  const once = addBatchDecoder()
  once.push(encodeAddBatch([]))
  once.end()
  t.equal(failure(() => once.end())?.code, ErrorCode.INTERNAL, 'a decoder decodes one message')
  t.equal(failure(() => once.push(Buffer.alloc(1)))?.code, ErrorCode.INTERNAL)
  t.equal(failure(() => encodeAddBatch([{ledgerId: 1n, entryId: -1n, lac: -1n, payload: Buffer.alloc(1), digest: 0}]))?.code, ErrorCode.OUT_OF_RANGE, 'the encoder checks ids')
})

t.test('fuzz: mutated frames and junk decode or fail with a LogError, without big allocations (a hang fails on the tap timeout)', async t => {
  const valid = [encodeAddBatch(adds), encodeEntries(entries), encodeAddResults(outcomes)]
  const decoders = [decodeAddBatch, decodeEntries, decodeAddResults] as const
  const seed = 20261125
  const rand = rng(seed)
  const before = process.memoryUsage().arrayBuffers
  let decoded = 0
  let refused = 0
  for (let i = 0; i < 6000; i++) {
    const k = i % 3
    let buf: Buffer
    if (i % 5 === 4) {
      buf = Buffer.alloc(Math.floor(rand() * 200))
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rand() * 256)
      if (rand() < 0.5 && buf.length >= 4) buf.writeUInt32BE(0x4c470000 | (VERSION << 8) | (k + 1), 0) // junk behind a valid magic and version
    } else {
      buf = Buffer.from(valid[k]!)
      const flips = 1 + Math.floor(rand() * 4)
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rand() * buf.length)
        buf[at] = rand() < 0.3 ? 0xff : Math.floor(rand() * 256)
      }
      if (rand() < 0.2) buf = buf.subarray(0, Math.floor(rand() * buf.length))
    }
    try {
      const step = 1 + Math.floor(rand() * 64)
      if (rand() < 0.5) decoders[k]!(buf)
      else if (k === 0) feed(addBatchDecoder(), buf, step)
      else if (k === 1) feed(entriesDecoder(), buf, step)
      else feed(addResultsDecoder(), buf, step)
      decoded++
    } catch (err) {
      if (!isLogError(err)) {
        t.fail(`seed ${seed}, case ${i}: ${String(err)}`)
        break
      }
      refused++
    }
  }
  t.ok(refused > 0 && decoded + refused === 6000, `${decoded} decoded, ${refused} refused with a LogError`)
  t.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no decoder allocated from a length it read')
})
