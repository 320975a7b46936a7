import t from 'tap'
import {CHECKPOINT_RATIO, channels, StorageEngine} from '../../src/engine/engine.js'
import {ErrorCode} from '../../src/errors.js'
import {entry, payloadFor, tempDir} from '../helpers/entries.js'

const small = {maxSegmentBytes: 64 * 1024, preallocBytes: 64 * 1024, compactIntervalMs: 0}

t.test('adds are readable, byte for byte, from cache and from disk after a restart', async t => {
  const dir = tempDir(t)
  let e = await StorageEngine.open({dir, ...small})
  await Promise.all(Array.from({length: 500}, (_, i) => e.add(entry(7n, BigInt(i), {size: 300}))))
  t.same((await e.read(7n, 42n)).payload, payloadFor(7n, 42n, 300))
  t.same(e.ledger(7n), {ledgerId: 7n, fenced: false, lac: 498n, lastEntryId: 499n, entries: 500, bytes: 150000})
  await e.close()
  e = await StorageEngine.open({dir, ...small, writeCacheBytes: 0})
  t.teardown(() => e.close())
  for (const i of [0n, 1n, 250n, 499n]) t.same((await e.read(7n, i)).payload, payloadFor(7n, i, 300), `entry ${i} after restart`)
  const range = await e.readRange(7n, 10n, 19n)
  t.same(range.map(r => r.entryId), [10n, 11n, 12n, 13n, 14n, 15n, 16n, 17n, 18n, 19n])
  t.ok(e.status().segments > 1, 'several segments were written')
  t.same(e.problems, [])
})

t.test('the same entry added twice is idempotent; different content is a conflict', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  const a = entry(1n, 0n)
  await Promise.all([e.add(a), e.add(a)]) // the second joins the first while it is in flight
  await e.add(a) // and once durable, is answered from the index
  t.equal(e.ledger(1n).entries, 1)
  await t.rejects(e.add(entry(1n, 0n, {payload: Buffer.from('other')})), {code: ErrorCode.ENTRY_CONFLICT})
})

t.test('fencing refuses ordinary adds, accepts recovery adds, and survives a restart', async t => {
  const dir = tempDir(t)
  let e = await StorageEngine.open({dir, ...small})
  for (let i = 0n; i < 5n; i++) await e.add(entry(3n, i))
  const info = await e.fence(3n)
  t.equal(info.fenced, true)
  t.equal(info.lastEntryId, 4n)
  t.equal(info.lac, 3n)
  await t.rejects(e.add(entry(3n, 5n)), {code: ErrorCode.FENCED})
  await e.add({...entry(3n, 5n), recovery: true})
  // Fencing a ledger this bookie has never seen creates it fenced (BookKeeper does the same).
  t.equal((await e.fence(99n)).fenced, true)
  await t.rejects(e.add(entry(99n, 0n)), {code: ErrorCode.FENCED})
  await e.close()
  e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  t.equal(e.ledger(3n).fenced, true)
  t.equal(e.ledger(3n).lastEntryId, 5n)
  await t.rejects(e.add(entry(3n, 6n)), {code: ErrorCode.FENCED})
})

t.test('deleting a ledger removes it now and after a restart; its id stays refused', async t => {
  const dir = tempDir(t)
  let e = await StorageEngine.open({dir, ...small})
  for (let i = 0n; i < 10n; i++) await e.add(entry(5n, i))
  await e.add(entry(6n, 0n))
  await e.deleteLedger(5n)
  await t.rejects(e.read(5n, 0n), {code: ErrorCode.NO_SUCH_LEDGER})
  await t.rejects(e.add(entry(5n, 10n)), {code: ErrorCode.NO_SUCH_LEDGER})
  await t.rejects(e.deleteLedger(12345n), {code: ErrorCode.NO_SUCH_LEDGER})
  await e.close()
  e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  await t.rejects(e.read(5n, 0n), {code: ErrorCode.NO_SUCH_LEDGER})
  t.same(e.ledgers(), [6n])
})

t.test('LZ4 compression is transparent and skipped when it does not pay', async t => {
  const dir = tempDir(t)
  let e = await StorageEngine.open({dir, ...small, writeCacheBytes: 0})
  const text = Buffer.from('{"level":"info","msg":"user logged in","user":"alice"}\n'.repeat(400)) // ~22 KiB: async path
  const smallText = Buffer.from('{"level":"info","msg":"GET /health 200"}\n'.repeat(20)) // inline path
  const random = Buffer.from(Array.from({length: 2000}, () => Math.floor(Math.random() * 256)))
  await e.add({...entry(8n, 0n, {payload: text}), compress: true})
  await e.add({...entry(8n, 1n, {payload: smallText}), compress: true})
  await e.add({...entry(8n, 2n, {payload: random}), compress: true})
  await e.close()
  e = await StorageEngine.open({dir, ...small, writeCacheBytes: 0})
  t.teardown(() => e.close())
  t.same((await e.read(8n, 0n)).payload, text)
  t.same((await e.read(8n, 1n)).payload, smallText)
  t.same((await e.read(8n, 2n)).payload, random)
  t.ok(e.status().diskBytes < text.length, 'the log-like payload was stored compressed')
})

t.test('bad input gets typed errors and the engine keeps serving', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small, maxEntryBytes: 1000})
  t.teardown(() => e.close())
  const ok = entry(1n, 0n)
  await t.rejects(e.add({...ok, ledgerId: -1n}), {code: ErrorCode.OUT_OF_RANGE})
  await t.rejects(e.add({...ok, ledgerId: 1n << 64n}), {code: ErrorCode.OUT_OF_RANGE})
  await t.rejects(e.add({...ok, entryId: -5n}), {code: ErrorCode.OUT_OF_RANGE})
  await t.rejects(e.add({...ok, entryId: 1n << 60n}), {code: ErrorCode.OUT_OF_RANGE})
  await t.rejects(e.add({...ok, lac: -2n}), {code: ErrorCode.OUT_OF_RANGE})
  await t.rejects(e.add({...ok, payload: 'text' as unknown as Buffer}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(e.add({...ok, ledgerId: 'x' as unknown as bigint}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(e.add({...ok, digest: 2 ** 33}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(e.add(null as unknown as typeof ok), {code: ErrorCode.BAD_INPUT})
  await t.rejects(e.add(entry(1n, 1n, {size: 1001})), {code: ErrorCode.TOO_LARGE})
  await t.rejects(e.add({...ok, digest: (ok.digest + 1) >>> 0}), {code: ErrorCode.BAD_CHECKSUM})
  await t.rejects(e.read(1n, 0n), {code: ErrorCode.NO_SUCH_LEDGER})
  await t.rejects(e.readRange(1n, 5n, 2n), {code: ErrorCode.OUT_OF_RANGE})
  await e.add(ok)
  await t.rejects(e.read(1n, 1n), {code: ErrorCode.NO_SUCH_ENTRY})
  t.same((await e.read(1n, 0n)).payload, ok.payload, 'still serving after all of that')
  await t.rejects(StorageEngine.open({dir: ''}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(StorageEngine.open({dir, maxEntryBytes: 5 * 1024 * 1024}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(StorageEngine.open({dir, compactThreshold: 2}), {code: ErrorCode.BAD_INPUT})
})

t.test('addBatch gives each entry its own outcome, inline and on the codec pool', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small, maxSegmentBytes: 4 * 1024 * 1024, verifyOffloadBytes: 64 * 1024})
  t.teardown(() => e.close())
  // One owned ArrayBuffer holding every payload, as a request body would: large enough to offload.
  const body = Buffer.allocUnsafeSlow(40 * 4096)
  const reqs = Array.from({length: 40}, (_, i) => {
    const p = payloadFor(2n, BigInt(i), 4096)
    p.copy(body, i * 4096)
    return {...entry(2n, BigInt(i), {payload: body.subarray(i * 4096, (i + 1) * 4096)})}
  })
  reqs[7] = {...reqs[7]!, digest: (reqs[7]!.digest + 1) >>> 0}
  const out = await e.addBatch(reqs, {transfer: body.buffer as ArrayBuffer})
  t.equal(out[7]?.code, ErrorCode.BAD_CHECKSUM)
  t.equal(out.filter(x => x === undefined).length, 39)
  t.equal(e.status().codecOffloads, 1, 'verified on the pool')
  t.same((await e.read(2n, 39n)).payload, payloadFor(2n, 39n, 4096))
  // A small batch verifies inline; bad items fail alone.
  const small2 = [entry(4n, 0n), {...entry(4n, 1n), entryId: -1n}, entry(4n, 2n)]
  const out2 = await e.addBatch(small2)
  t.same(out2.map(x => x?.code), [undefined, ErrorCode.OUT_OF_RANGE, undefined])
  t.equal(e.status().codecOffloads, 1)
})

t.test('long poll on the LAC wakes on a new entry and times out otherwise', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  await e.add(entry(9n, 0n, {lac: -1n}))
  t.equal(await e.waitForLac(9n, -1n, 20), -1n, 'times out with the current value')
  const waiting = e.waitForLac(9n, -1n, 10_000)
  await e.add(entry(9n, 1n, {lac: 0n}))
  t.equal(await waiting, 0n, 'woken by the entry that moved the LAC')
  t.equal(await e.waitForLac(9n, -1n, 10_000), 0n, 'already beyond: immediate')
  await t.rejects(e.waitForLac(9n, -2n, 10), {code: ErrorCode.OUT_OF_RANGE})
  // An asker that goes away ends the wait at once (no waiter left behind for the whole timeout).
  const ac = new AbortController()
  const abandoned = e.waitForLac(9n, 0n, 60_000, ac.signal)
  ac.abort()
  t.equal(await abandoned, 0n)
  // The writer's explicit LAC wakes waiters too, without a new entry.
  const woken = e.waitForLac(9n, 0n, 10_000)
  t.equal(e.updateLac(9n, 1n), 1n)
  t.equal(await woken, 1n)
  t.equal(e.updateLac(9n, 0n), 1n, 'never goes backwards')
})

t.test('a LAC counts when the add carrying it arrives; reads answer entries on their way to the journal from memory up to the LAC and wait for them above it', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  await e.add(entry(7n, 0n, {lac: -1n}))
  const adding = e.addBatch([entry(7n, 1n, {lac: 0n}), entry(7n, 2n, {lac: 0n})])
  // Entry 0 was acknowledged (the writer says so with entry 1): a follower may have it now, one journal
  // sync before entry 1 is durable here (the sync answers through the journal thread, never within a turn).
  t.equal(e.ledger(7n).lac, 0n, 'the LAC carried by entry 1 counts as the add arrives')
  t.equal(await e.waitForLac(7n, -1n, 10_000), 0n, 'a long poll answers it')
  t.equal(e.ledger(7n).entries, 1, '... while entry 1 is not yet durable here')
  // The writer's explicit LAC says 1 and 2 are acknowledged (by other bookies): they are committed, so a
  // read answers them from the adds in memory, before this bookie's own sync of them (which answers through
  // the journal thread, never within a turn), as BookKeeper's write cache does.
  t.equal(e.updateLac(7n, 2n), 2n)
  const early = await e.readRange(7n, 0n, 2n)
  t.same(early.map(x => [x.entryId, x.payload.toString(), x.digest]), [0n, 1n, 2n].map(id => [id, entry(7n, id).payload.toString(), entry(7n, id, {lac: id === 0n ? -1n : 0n}).digest]), 'a range read answers 0 (held) and 1, 2 (in memory)')
  t.equal(e.ledger(7n).entries, 1, '... before 1 and 2 are durable here')
  t.equal((await e.read(7n, 2n)).entryId, 2n, 'a read of one committed entry on its way answers it too')
  t.equal(e.ledger(7n).entries, 1, '... also before its sync')
  t.same(await adding, [undefined, undefined])
  // Above the LAC an entry is not known to be committed: a read waits for this bookie's sync of it.
  const late = e.addBatch([entry(7n, 3n, {lac: 2n}), entry(7n, 4n, {lac: 2n})])
  t.equal((await e.read(7n, 3n)).entryId, 3n, 'a read of an entry above the LAC on its way waits for it')
  t.equal(e.ledger(7n).entries, 5, '... until it is durable here')
  t.same((await e.readRange(7n, 3n, 4n)).map(x => x.entryId), [3n, 4n])
  await late
})

t.test('one process per data directory; several engines per process', async t => {
  const a = tempDir(t)
  const b = tempDir(t)
  const ea = await StorageEngine.open({dir: a, ...small})
  const eb = await StorageEngine.open({dir: b, ...small})
  await t.rejects(StorageEngine.open({dir: a, ...small}), {code: ErrorCode.LOCKED})
  await Promise.all([ea.add(entry(1n, 0n)), eb.add(entry(1n, 0n, {size: 10}))])
  t.equal(ea.ledger(1n).bytes, 100)
  t.equal(eb.ledger(1n).bytes, 10)
  await ea.close()
  await eb.close()
  const again = await StorageEngine.open({dir: a, ...small})
  await again.close()
  await t.rejects(again.add(entry(1n, 1n)), {code: ErrorCode.CLOSED})
})

t.test('checkpoints space out as the index grows (a checkpoint rewrites the whole index)', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, maxSegmentBytes: 4 * 1024 * 1024, compactIntervalMs: 0, checkpointBytes: 16 * 1024})
  t.teardown(() => e.close())
  const sizes: number[] = []
  let journal = 0
  const onBatch = (m: unknown): void => { if ((m as {dir: string}).dir === dir) journal += (m as {bytes: number}).bytes }
  const onCheckpoint = (m: unknown): void => { if ((m as {dir: string}).dir === dir) sizes.push((m as {bytes: number}).bytes) }
  channels.batch.subscribe(onBatch)
  channels.checkpoint.subscribe(onCheckpoint)
  t.teardown(() => { channels.batch.unsubscribe(onBatch); channels.checkpoint.unsubscribe(onCheckpoint) })
  for (let i = 0; i < 40; i++) await Promise.all(Array.from({length: 500}, (_, k) => e.add(entry(3n, BigInt(i * 500 + k), {size: 40}))))
  // 20000 entries of 96 journal bytes: a checkpoint every 16 KiB would be ~110 of them. With each one at
  // least CHECKPOINT_RATIO times the last one's size of journal apart, the index (24 bytes an entry) can
  // only be rewritten a handful of times: after n entries the next waits until ~n * (1 + 16 * 24 / 96).
  t.ok(journal >= 20000 * 96, `${journal} journal bytes`)
  t.ok(sizes.length >= 2 && sizes.length <= 8, `${sizes.length} checkpoints for 20000 entries (sizes ${sizes.join(', ')})`)
  // Each checkpoint but the last is followed by at least CHECKPOINT_RATIO times its size of journal.
  let followed = 0
  for (const b of sizes.slice(0, -1)) followed += b
  t.ok(followed * CHECKPOINT_RATIO <= journal, `checkpoints wrote ${followed} bytes (before the last) for ${journal} of journal`)
})

t.test('range reads hand out the write cache as views only to a callback that uses them at once', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small, writeCacheBytes: 64 * 1024})
  t.teardown(() => e.close())
  const fill = async (ledgerId: bigint, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await e.add(entry(ledgerId, BigInt(i), {size: 1000}))
  }
  // readRange's answer is its own: writing over the whole cache afterwards leaves it intact.
  await fill(1n, 10)
  const got = await e.readRange(1n, 0n, 9n)
  await fill(2n, 200)
  for (const g of got) t.ok(g.payload.equals(payloadFor(1n, g.entryId, 1000)), `readRange entry ${g.entryId} intact after the cache was written over`)

  // Ledger 3: ids 5-9 first, then 0-4; then enough of ledger 4 to evict 5-9 but not 0-4. A range read of 0-9
  // takes 0-4 from the cache (views) and then reads 5 from the file: the views must be copies by the time
  // that read lets other adds in, which here write over the whole cache while it waits.
  for (let i = 5; i < 10; i++) await e.add(entry(3n, BigInt(i), {size: 1000}))
  for (let i = 0; i < 5; i++) await e.add(entry(3n, BigInt(i), {size: 1000}))
  let n = 0
  for (; n < 200; n++) {
    await e.add(entry(4n, BigInt(n), {size: 1000}))
    const before = e.status().writeCache.misses
    const probe = await e.readRange(3n, 5n, 5n)
    t.ok(probe[0]!.payload.equals(payloadFor(3n, 5n, 1000)))
    if (e.status().writeCache.misses > before) break
  }
  t.ok(n < 200, `entry 3/5 left the cache after ${n + 1} adds of ledger 4`)
  const hitsBefore = e.status().writeCache.hits
  const inner = e as unknown as {readHeld: (l: bigint, id: bigint) => Promise<unknown>}
  const readHeld = inner.readHeld.bind(e)
  let viewsBeforeFileRead = -1
  inner.readHeld = async (l, id) => {
    if (viewsBeforeFileRead < 0) {
      viewsBeforeFileRead = e.status().writeCache.hits - hitsBefore
      for (let i = 0; i < 100; i++) await e.add(entry(5n, BigInt(i), {size: 1000, payload: Buffer.alloc(1000, 0xee)}))
    }
    return readHeld(l, id)
  }
  const copies = await e.readRangeWith(3n, 0n, 9n, {}, entries => entries.map(x => ({id: x.entryId, payload: Buffer.from(x.payload)})))
  inner.readHeld = readHeld
  t.equal(viewsBeforeFileRead, 5, 'entries 0-4 came from the cache before the first file read')
  t.same(copies.map(c => c.id), [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n])
  for (const c of copies) t.ok(c.payload.equals(payloadFor(3n, c.id, 1000)), `entry ${c.id} is its own bytes, not what was written over the cache meanwhile`)
})

t.test('close notices: the LAC rises to the last entry, LAC waits end at once, an empty ledger is not created', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...small})
  t.teardown(() => e.close())
  for (let i = 0n; i < 3n; i++) await e.add(entry(4n, i))
  t.equal(e.ledger(4n).lac, 1n, 'entries carry LACs up to 1')
  const waiting = e.waitForLac(4n, 2n, 60_000)
  t.equal(e.noteClosed(4n, 2n), 2n, 'the notice raises the LAC to the last entry')
  t.equal(await waiting, 2n, 'a LAC wait beyond the end ends at once')
  t.equal(await e.waitForLac(4n, 5n, 60_000), 2n, 'and so does one that starts after the notice')
  t.equal(e.closeNotice(4n), 2n)
  t.equal(e.closeNotice(5n), undefined, 'no notice, none reported')
  t.equal(e.noteClosed(6n, -1n), -1n, 'an empty ledger this bookie never saw')
  t.notOk(e.ledgers().includes(6n), 'is not created by its notice')
  t.equal(e.closeNotice(6n), -1n)
  await e.deleteLedger(4n)
  t.equal(e.closeNotice(4n), undefined, 'deleting the ledger drops its notice')
  t.throws(() => e.noteClosed(4n, 2n), {code: ErrorCode.NO_SUCH_LEDGER}, 'a deleted ledger takes no notice')
})
