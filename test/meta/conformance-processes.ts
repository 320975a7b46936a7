/**
 * Conformance cases that need several processes or a clock: CAS races between real processes, and bookie
 * liveness (refresh, expiry when the process stops or dies, recovery when it resumes, take-over by a newer
 * registration of the same id).
 */
import type {Test} from 'tap'
import {ErrorCode} from '../../src/errors.js'
import type {LedgerState} from '../../src/meta/store.js'
import {MetaChild, aborted, waitFor} from './children.js'
import {bookie, newLedger, opened, statusOf, uniqueBookieId, type ConformanceOptions, type Open} from './harness.js'

const RACERS = 4
const ROUNDS = 3

export function processCases(t: Test, name: string, open: Open, opts: ConformanceOptions): void {
  t.test(`${name}: processes racing OPEN -> IN_RECOVERY -> CLOSED: exactly one wins each step`, async t => {
    const store = await opened(t, open)
    const racers = await Promise.all(Array.from({length: RACERS}, () => MetaChild.start(store.url)))
    t.teardown(() => Promise.all(racers.map(r => r.kill())))

    for (let round = 0; round < ROUNDS; round++) {
      const {value: {ledgerId}} = await store.createLedger(newLedger())
      const step = async (from: LedgerState, to: LedgerState): Promise<number> => {
        // Everyone reads first, so all hold the same version when the race starts.
        const reads = await Promise.all(racers.map(r => r.request({op: 'read', ledgerId: ledgerId.toString()})))
        t.ok(reads.every(r => r.op === 'read' && r.state === from && r.version === (reads[0] as {version: string}).version), `round ${round}: all read ${from} at one version`)
        racers.forEach((r, i) => r.send({op: 'transition', to, lastEntryId: to === 'CLOSED' ? String(100 + i) : '-1'}))
        const results = await Promise.all(racers.map(r => r.reply()))
        const winners = results.flatMap((r, i) => (r.op === 'transition' && r.won ? [i] : []))
        t.equal(winners.length, 1, `round ${round}: exactly one process moved the ledger to ${to}`)
        t.ok(results.every(r => r.op === 'transition' && (r.won || r.code === ErrorCode.BAD_VERSION)), `round ${round}: the others got BAD_VERSION`)
        return winners[0] ?? -1
      }
      await step('OPEN', 'IN_RECOVERY')
      t.equal((await store.getLedger(ledgerId)).value.state, 'IN_RECOVERY')
      const closer = await step('IN_RECOVERY', 'CLOSED')
      const final = (await store.getLedger(ledgerId)).value
      t.equal(final.state, 'CLOSED')
      t.equal(final.lastEntryId, BigInt(100 + closer), `round ${round}: the stored close is the winner's`)
    }
  })

  t.test(`${name}: bookie registration, update, deregistration and take-over`, async t => {
    const a = await opened(t, open)
    const b = await opened(t, open)
    const id = uniqueBookieId('reg')
    const reg = await a.registerBookie(bookie(id))
    t.match(await statusOf(b, id), {alive: true, state: 'writable'}, 'listed alive, seen from another connection')
    await reg.update(bookie(id, {state: 'read-only', ledgers: 7}))
    t.match(await statusOf(b, id), {alive: true, state: 'read-only', ledgers: 7}, 'update publishes new info')
    await reg.close()
    const down = await statusOf(b, id)
    t.match(down, {alive: false, state: 'read-only'}, 'deregistered: down at once, still listed')
    t.ok(down !== undefined && down.lastSeen <= Date.now(), 'with the time it was last seen')
    t.match(reg.signal.reason, {code: ErrorCode.CLOSED}, 'the signal says closed')
    await reg.close()
    await t.rejects(reg.update(bookie(id)), {code: ErrorCode.CLOSED}, 'update after close')

    const first = await a.registerBookie(bookie(id, {address: 'old:1'}), {ttlMs: opts.bookieTtlMs})
    const second = await b.registerBookie(bookie(id, {address: 'new:1'}))
    await aborted(first.signal, opts.expiryBoundMs)
    t.match(first.signal.reason, {code: ErrorCode.BAD_VERSION}, 'the older registration finds out at its next refresh, by itself')
    await t.rejects(first.update(bookie(id)), {code: ErrorCode.BAD_VERSION}, 'and can no longer publish')
    await first.close()
    t.match(await statusOf(a, id), {alive: true, address: 'new:1'}, 'closing the loser leaves the new owner alive')
    // `second` has the default ttl, so its next refresh is seconds away: its own update is what finds out.
    const third = await a.registerBookie(bookie(id, {address: 'third:1'}))
    await t.rejects(second.update(bookie(id, {address: 'late:1'})), {code: ErrorCode.BAD_VERSION}, 'an update after a take-over loses')
    t.match(second.signal.reason, {code: ErrorCode.BAD_VERSION})
    t.match(await statusOf(b, id), {alive: true, address: 'third:1'}, 'and wrote nothing')
    await second.close()
    await third.close()
    t.match(await statusOf(a, id), {alive: false, address: 'third:1'})
    const ids = (await a.listBookies()).map(s => s.id)
    t.same(ids, [...ids].sort(), 'listBookies is sorted by id')
  })

  t.test(`${name}: a bookie is alive while its process runs, down when it stops or dies`, async t => {
    const store = await opened(t, open)
    const id = uniqueBookieId('liveness')
    const ttl = opts.bookieTtlMs
    const child = await MetaChild.start(store.url)
    t.teardown(() => child.kill())
    t.match(await child.request({op: 'register', info: bookie(id), ttlMs: ttl}), {op: 'registered'})
    const alive = async (): Promise<boolean> => (await statusOf(store, id))?.alive === true

    // Observed over three ttls: the registration's own refresh is what keeps it alive.
    const until = Date.now() + 3 * ttl
    let downSeen = false
    for (let i = 0; i < 1000 && Date.now() < until; i++) {
      if (!(await alive())) downSeen = true
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    t.notOk(downSeen, `never listed down during ${3 * ttl} ms of refreshes`)

    child.process.kill('SIGSTOP')
    t.teardown(() => { child.process.kill('SIGCONT') })
    const stalled = await waitFor('a stopped bookie to be listed down', async () => !(await alive()), opts.expiryBoundMs)
    t.pass(`stopped (SIGSTOP): listed down after ${stalled} ms`)
    child.process.kill('SIGCONT')
    const back = await waitFor('a resumed bookie to be listed alive', alive, opts.expiryBoundMs)
    t.pass(`resumed (SIGCONT): alive again after ${back} ms, with no help from the test`)

    await child.kill()
    const dead = await waitFor('a killed bookie to be listed down', async () => !(await alive()), opts.expiryBoundMs)
    t.pass(`killed (SIGKILL): listed down after ${dead} ms`)
    t.match(await statusOf(store, id), {alive: false, address: bookie(id).address}, 'still listed, as down')
  })
}
