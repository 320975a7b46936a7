/**
 * The MetadataStore conformance suite: every driver runs these same cases (test/meta/sqlite.test.ts,
 * test/meta/etcd.test.ts). `open` returns a NEW connection to the SAME backing store each call, so cases can
 * race several connections (and processes) against one another. The backing store may hold data from other
 * cases: each case works on its own ledgers, keys and bookie ids.
 */
import type {Test} from 'tap'
import {ErrorCode} from '../../src/errors.js'
import {inputCases} from './conformance-inputs.js'
import {processCases} from './conformance-processes.js'
import {closedLedger, newLedger, opened, type ConformanceOptions, type Open} from './harness.js'

export type {ConformanceOptions, Open}

export function conformance(t: Test, name: string, open: Open, opts: ConformanceOptions): void {
  ledgerCases(t, name, open)
  kvCases(t, name, open)
  inputCases(t, name, open, opts)
  processCases(t, name, open, opts)
}

function ledgerCases(t: Test, name: string, open: Open): void {
  t.test(`${name}: create, get, update and delete a ledger`, async t => {
    const store = await opened(t, open)
    const input = newLedger()
    const created = await store.createLedger(input)
    t.ok(created.value.ledgerId >= 0n, 'an id is allocated')
    t.ok(created.version >= 1n, 'versions start at 1')
    t.same({...created.value, ledgerId: 0n}, {...input, ledgerId: 0n}, 'the record is what was asked for')
    // The store keeps its own copy: a caller that reuses its object cannot change the stored record.
    input.ensembles[0]!.bookies[0] = 'mutated'
    input.customMetadata['owner'] = 'mutated'
    const got = await store.getLedger(created.value.ledgerId)
    t.same(got, created, 'get returns the created record and version')
    t.equal(got.value.ensembles[0]!.bookies[0], 'bookie-1')

    const recovering = await store.updateLedger({...got.value, state: 'IN_RECOVERY'}, got.version)
    t.ok(recovering.version > got.version, 'an update gives a higher version')
    const changed = await store.updateLedger({
      ...recovering.value,
      ensembles: [...recovering.value.ensembles, {firstEntryId: 10n, bookies: ['bookie-4', 'bookie-2', 'bookie-3']}],
    }, recovering.version)
    const closed = await store.updateLedger(closedLedger(changed.value, 41n), changed.version)
    t.same(await store.getLedger(created.value.ledgerId), closed, 'the last write is what get returns')
    t.equal(closed.value.lastEntryId, 41n)
    t.equal(closed.value.length, 4200n)
    t.same(closed.value.ensembles.map(e => e.firstEntryId), [0n, 10n], 'an ensemble change is kept in order')

    await t.rejects(store.deleteLedger(created.value.ledgerId, recovering.version), {code: ErrorCode.BAD_VERSION}, 'delete with a stale version')
    await store.deleteLedger(created.value.ledgerId, closed.version)
    await t.rejects(store.getLedger(created.value.ledgerId), {code: ErrorCode.NO_SUCH_LEDGER}, 'gone after delete')
    await t.rejects(store.updateLedger(closed.value, closed.version), {code: ErrorCode.NO_SUCH_LEDGER}, 'update of a deleted ledger')
    await t.rejects(store.deleteLedger(created.value.ledgerId), {code: ErrorCode.NO_SUCH_LEDGER}, 'delete twice')

    const other = await store.createLedger(newLedger())
    await store.deleteLedger(other.value.ledgerId)
    await t.rejects(store.getLedger(other.value.ledgerId), {code: ErrorCode.NO_SUCH_LEDGER}, 'delete without a version')
  })

  t.test(`${name}: compare-and-swap lets exactly one of several writers win`, async t => {
    const a = await opened(t, open)
    const b = await opened(t, open)
    const base = await a.createLedger(newLedger())
    const err = await a.updateLedger({...base.value, customMetadata: {w: 'a'}}, base.version)
      .then(() => b.updateLedger({...base.value, customMetadata: {w: 'b'}}, base.version))
      .catch((e: unknown) => e)
    t.match(err, {code: ErrorCode.BAD_VERSION, retriable: true}, 'the second writer with the same version loses')
    const now = await b.getLedger(base.value.ledgerId)
    t.same(now.value.customMetadata, {w: 'a'}, 'the loser changed nothing')

    // Eight writers on two connections, all holding the same version, at once.
    const results = await Promise.allSettled(Array.from({length: 8}, (_, i) =>
      (i % 2 === 0 ? a : b).updateLedger({...now.value, customMetadata: {w: String(i)}}, now.version)))
    const won = results.filter(r => r.status === 'fulfilled')
    t.equal(won.length, 1, 'exactly one concurrent CAS wins')
    t.ok(results.every(r => r.status === 'fulfilled' || (r.reason as {code?: unknown}).code === ErrorCode.BAD_VERSION), 'the rest get BAD_VERSION')
    const winner = (won[0] as PromiseFulfilledResult<{value: {customMetadata: Record<string, string>}}>).value
    t.same((await a.getLedger(base.value.ledgerId)).value.customMetadata, winner.value.customMetadata, 'the stored record is the winner\'s')
  })

  t.test(`${name}: ledger ids are unique across concurrent creators and never reused`, async t => {
    const stores = await Promise.all([opened(t, open), opened(t, open), opened(t, open)])
    const created = await Promise.all(stores.flatMap(s => Array.from({length: 8}, () => s.createLedger(newLedger()))))
    const ids = created.map(c => c.value.ledgerId)
    t.equal(new Set(ids).size, ids.length, `${ids.length} concurrent creates, ${ids.length} distinct ids`)
    const max = ids.reduce((m, id) => (id > m ? id : m), 0n)
    await stores[0]!.deleteLedger(max)
    const after = await stores[1]!.createLedger(newLedger())
    t.ok(after.value.ledgerId > max, `an id is not reused after delete (${after.value.ledgerId} > ${max})`)

    const chosen = after.value.ledgerId + 1000n
    const explicit = await stores[2]!.createLedger(newLedger(), {ledgerId: chosen})
    t.equal(explicit.value.ledgerId, chosen, 'a requested id is honoured')
    await t.rejects(stores[0]!.createLedger(newLedger(), {ledgerId: chosen}), {code: ErrorCode.LEDGER_EXISTS}, 'a taken id')
    await stores[0]!.deleteLedger(chosen)
    const next = await stores[1]!.createLedger(newLedger())
    t.ok(next.value.ledgerId > chosen, 'allocation skips past a requested id, even a deleted one')
  })

  t.test(`${name}: listLedgers pages in ascending id order`, async t => {
    const store = await opened(t, open)
    const ids: bigint[] = []
    for (let i = 0; i < 5; i++) ids.push((await store.createLedger(newLedger())).value.ledgerId)
    const first = ids[0]! - 1n
    const all = await store.listLedgers({after: first})
    t.same(all.slice(0, 5), ids, 'in creation (= id) order')
    t.same(await store.listLedgers({after: first, limit: 2}), ids.slice(0, 2), 'limit')
    t.same(await store.listLedgers({after: ids[1]!, limit: 2}), ids.slice(2, 4), 'after is exclusive')
    t.ok((await store.listLedgers()).length >= 5, 'no options: everything')
    t.same(await store.listLedgers({after: (1n << 64n) - 1n}), [], 'nothing after the largest id')
  })
}

function kvCases(t: Test, name: string, open: Open): void {
  t.test(`${name}: versioned key-value with compare-and-swap`, async t => {
    const store = await opened(t, open)
    const key = `cursors/${process.pid}-${Math.random().toString(36).slice(2)}/c1`
    t.equal(await store.get(key), undefined, 'absent')
    const v1 = await store.put(key, Buffer.from('one'), null)
    await t.rejects(store.put(key, Buffer.from('again'), null), {code: ErrorCode.BAD_VERSION}, 'create-if-absent on a present key')
    const v2 = await store.put(key, Buffer.from('two'), v1)
    t.ok(v2 > v1, 'a new version per write')
    await t.rejects(store.put(key, Buffer.from('stale'), v1), {code: ErrorCode.BAD_VERSION}, 'stale version')
    t.same(await store.get(key), {value: Buffer.from('two'), version: v2})
    await t.rejects(store.delete(key, v1), {code: ErrorCode.BAD_VERSION}, 'delete with a stale version')
    await store.delete(key, v2)
    t.equal(await store.get(key), undefined, 'deleted')
    await store.delete(key)
    t.pass('deleting an absent key without a version is a no-op')
    await t.rejects(store.delete(key, v2), {code: ErrorCode.BAD_VERSION}, 'deleting an absent key at a version')
    await t.rejects(store.put(key, Buffer.from('aba'), v2), {code: ErrorCode.BAD_VERSION}, 'no CAS against a deleted key')
    const v3 = await store.put(key, Buffer.from('three'), null)
    t.ok(v3 > v2, 're-created keys never get an old version back (no ABA)')
    await t.rejects(store.put(key, Buffer.from('aba'), v2), {code: ErrorCode.BAD_VERSION}, 'an old version does not match the new key')
  })

  t.test(`${name}: key-value values are bytes, and list is by prefix in key order`, async t => {
    const store = await opened(t, open)
    const dir = `logs/${process.pid}-${Math.random().toString(36).slice(2)}/`
    const bytes = Buffer.from(Array.from({length: 256}, (_, i) => i))
    await store.put(`${dir}b`, bytes, null)
    await store.put(`${dir}a`, Buffer.alloc(0), null)
    await store.put(`${dir}c/deep`, Buffer.from('x'), null)
    await store.put(`${dir.slice(0, -1)}-sibling`, Buffer.from('not under the prefix'), null)
    t.same((await store.get(`${dir}b`))?.value, bytes, 'all 256 byte values round-trip')
    t.same((await store.get(`${dir}a`))?.value, Buffer.alloc(0), 'an empty value is a value')
    const listed = await store.list(dir)
    t.same(listed.map(e => e.key), [`${dir}a`, `${dir}b`, `${dir}c/deep`], 'only the prefix, sorted by key')
    t.ok(listed.every(e => e.version >= 1n))
    t.ok((await store.list('')).length >= 4, "'' lists everything")
    await t.rejects(store.put(`${dir}big`, Buffer.alloc(1024 * 1024 + 1), null), {code: ErrorCode.TOO_LARGE}, 'values are at most 1 MiB')
  })
}
