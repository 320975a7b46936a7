/**
 * Conformance cases for what a store must refuse: malformed input (BAD_INPUT, before any write), use after
 * close (CLOSED) and a store that does not answer (METADATA_UNAVAILABLE within a bounded time).
 */
import type {Test} from 'tap'
import {ErrorCode} from '../../src/errors.js'
import {openMetadataStore} from '../../src/meta/open.js'
import type {LedgerMetadata, NewLedger} from '../../src/meta/store.js'
import {bookie, newLedger, opened, uniqueBookieId, type ConformanceOptions, type Open} from './harness.js'

/** Each spoils one field of a valid ledger; `as unknown as` because JS callers can send anything. */
const BAD_LEDGERS: Array<[string, Partial<Record<keyof NewLedger, unknown>>]> = [
  ['E < Qw', {ensembleSize: 2, writeQuorum: 3, ackQuorum: 2}],
  ['Qw < Qa', {writeQuorum: 1, ackQuorum: 2}],
  ['Qa < 1', {ackQuorum: 0}],
  ['fractional E', {ensembleSize: 2.5}],
  ['unknown state', {state: 'OPENED'}],
  ['lastEntryId set while OPEN', {lastEntryId: 5n}],
  ['lastEntryId below -1', {state: 'CLOSED', lastEntryId: -2n}],
  ['lastEntryId as a number', {lastEntryId: -1}],
  ['negative length', {length: -1n}],
  ['no ensembles', {ensembles: []}],
  ['first ensemble not at 0', {ensembles: [{firstEntryId: 1n, bookies: ['a', 'b', 'c']}]}],
  ['ensembles out of order', {ensembles: [{firstEntryId: 0n, bookies: ['a', 'b', 'c']}, {firstEntryId: 0n, bookies: ['a', 'b', 'd']}]}],
  ['ensemble of the wrong size', {ensembles: [{firstEntryId: 0n, bookies: ['a', 'b']}]}],
  ['a bookie twice in one ensemble', {ensembles: [{firstEntryId: 0n, bookies: ['a', 'b', 'a']}]}],
  ['an empty bookie id', {ensembles: [{firstEntryId: 0n, bookies: ['a', 'b', '']}]}],
  ['unknown compression', {compression: 'zstd'}],
  ['customMetadata with a number', {customMetadata: {n: 1}}],
  ['negative createdAt', {createdAt: -1}],
]

export function inputCases(t: Test, name: string, open: Open, opts: ConformanceOptions): void {
  t.test(`${name}: bad input is BAD_INPUT and writes nothing`, async t => {
    const store = await opened(t, open)
    const good = await store.createLedger(newLedger())
    const id = good.value.ledgerId
    const badInput = {code: ErrorCode.BAD_INPUT}
    for (const [what, spoil] of BAD_LEDGERS) {
      await t.rejects(store.createLedger(newLedger(spoil as Partial<NewLedger>)), badInput, `create: ${what}`)
      await t.rejects(store.updateLedger({...good.value, ...spoil} as LedgerMetadata, good.version), badInput, `update: ${what}`)
    }
    await t.rejects(store.createLedger(null as unknown as NewLedger), badInput, 'create: not an object')
    t.same(await store.getLedger(id), good, 'no bad update reached the store')
    t.same(await store.listLedgers({after: id}), [], 'no bad create reached the store')

    for (const bad of [-1n, 1n << 64n]) {
      await t.rejects(store.getLedger(bad), badInput, `get ledger ${bad}`)
      await t.rejects(store.deleteLedger(bad), badInput, `delete ledger ${bad}`)
      await t.rejects(store.createLedger(newLedger(), {ledgerId: bad}), badInput, `create ledger ${bad}`)
      await t.rejects(store.updateLedger({...good.value, ledgerId: bad}, good.version), badInput, `update ledger ${bad}`)
    }
    await t.rejects(store.getLedger(7 as unknown as bigint), badInput, 'a number id (would lose precision above 2^53)')
    await t.rejects(store.updateLedger(good.value, 0n), badInput, 'version 0')
    await t.rejects(store.deleteLedger(id, -3n), badInput, 'negative version')
    await t.rejects(store.listLedgers({limit: 0}), badInput, 'limit 0')
    await t.rejects(store.listLedgers({after: -1n}), badInput, 'negative after')

    await t.rejects(store.get(''), badInput, 'get: empty key')
    await t.rejects(store.put('', Buffer.from('x'), null), badInput, 'put: empty key')
    await t.rejects(store.delete(''), badInput, 'delete: empty key')
    await t.rejects(store.put('k', 'text' as unknown as Buffer, null), badInput, 'put: a string value')
    await t.rejects(store.put('k', Buffer.from('x'), 0n), badInput, 'put: version 0')
    await t.rejects(store.list(3 as unknown as string), badInput, 'list: not a string')

    const bid = uniqueBookieId('bad')
    await t.rejects(store.registerBookie(bookie('')), badInput, 'register: empty id')
    await t.rejects(store.registerBookie(bookie(bid, {state: 'gone' as 'writable'})), badInput, 'register: bad state')
    await t.rejects(store.registerBookie(bookie(bid, {freeBytes: -1})), badInput, 'register: negative freeBytes')
    await t.rejects(store.registerBookie(bookie(bid), {ttlMs: 5}), badInput, 'register: ttl below the floor')
    t.notOk((await store.listBookies()).some(b => b.id === bid), 'no bad registration reached the store')
    const reg = await store.registerBookie(bookie(bid))
    await t.rejects(reg.update(bookie('someone-else')), badInput, 'update: another bookie id')
    await t.rejects(reg.update(bookie(bid, {ledgers: 0.5})), badInput, 'update: fractional ledger count')
    await reg.close()
  })

  t.test(`${name}: a closed store answers CLOSED`, async t => {
    const store = await open()
    const ledger = await store.createLedger(newLedger())
    const cid = uniqueBookieId('closing')
    const reg = await store.registerBookie(bookie(cid))
    await store.close()
    t.ok(reg.signal.aborted, 'closing the store closes its registrations')
    const closed = {code: ErrorCode.CLOSED}
    await t.rejects(store.getLedger(ledger.value.ledgerId), closed, 'getLedger')
    await t.rejects(store.createLedger(newLedger()), closed, 'createLedger')
    await t.rejects(store.updateLedger(ledger.value, ledger.version), closed, 'updateLedger')
    await t.rejects(store.deleteLedger(ledger.value.ledgerId), closed, 'deleteLedger')
    await t.rejects(store.listLedgers(), closed, 'listLedgers')
    await t.rejects(store.registerBookie(bookie('x')), closed, 'registerBookie')
    await t.rejects(store.listBookies(), closed, 'listBookies')
    await t.rejects(store.get('k'), closed, 'get')
    await t.rejects(store.put('k', Buffer.from('v'), null), closed, 'put')
    await t.rejects(store.delete('k'), closed, 'delete')
    await t.rejects(store.list(''), closed, 'list')
    await t.rejects(reg.update(bookie(cid)), closed, 'a registration of a closed store')
    await store.close()
    t.pass('close is idempotent')
  })

  t.test(`${name}: an unreachable store fails with METADATA_UNAVAILABLE within a bounded time`, async t => {
    const start = Date.now()
    const err = await openMetadataStore(opts.unreachableUrl, {timeoutMs: 2000}).then(() => undefined, (e: unknown) => e)
    const elapsed = Date.now() - start
    t.match(err, {code: ErrorCode.METADATA_UNAVAILABLE, retriable: true}, `${opts.unreachableUrl}: METADATA_UNAVAILABLE`)
    t.match((err as Error).message, /\S/, `it says why: ${(err as Error).message}`)
    t.ok(elapsed < 6000, `it gave up in ${elapsed} ms (timeout 2000 ms)`)
  })
}
