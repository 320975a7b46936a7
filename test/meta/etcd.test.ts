/**
 * The etcd driver: the conformance suite on a real etcd (a child process from test/helpers/etcd.ts, or the
 * server named by LOGCTL_TEST_ETCD), under a key prefix of its own, then what only this driver has: hosts
 * that refuse, hang or go silent mid-session, fail-over, and records it did not write.
 */
import t from 'tap'
import {createServer, type AddressInfo, type Socket} from 'node:net'
import {ErrorCode} from '../../src/errors.js'
import {padLedgerId} from '../../src/meta/codec.js'
import {openMetadataStore} from '../../src/meta/open.js'
import {startEtcd} from '../helpers/etcd.js'
import {conformance} from './conformance.js'
import {bookie, newLedger, opened, statusOf, uniqueBookieId} from './harness.js'
import {waitFor} from './children.js'
import {TcpProxy} from './tcp-proxy.js'

/** A loopback port nobody listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** Write raw bytes under a key through etcd's gateway, bypassing the driver (to plant bad records). */
async function rawPut(endpoint: string, key: string, value: string): Promise<void> {
  const res = await fetch(`${endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64')}),
  })
  if (res.status !== 200) throw new Error(`raw put ${key}: ${res.status} ${await res.text()}`)
}

const etcd = await startEtcd().catch((err: Error) => {
  // Not a skip: CI installs etcd, so a missing binary is a broken environment to fix, not a pass.
  t.fail(err.message)
  return undefined
})

if (etcd !== undefined) {
  t.teardown(() => etcd.stop())
  const prefix = `/logctl-test/${process.pid}-${Date.now().toString(36)}`
  const url = `${etcd.url}${prefix}`
  const [clientHost = '127.0.0.1', clientPort = '2379'] = etcd.endpoint.replace(/^http:\/\//, '').split(':')
  const target = {host: clientHost, port: Number(clientPort)}

  conformance(t, 'etcd', () => openMetadataStore(url), {
    unreachableUrl: `etcd://127.0.0.1:${await deadPort()}`,
    // etcd's lease floor is about 2 s whatever we ask; keepalives still go every ttl/3.
    bookieTtlMs: 1000,
    expiryBoundMs: 8000,
  })

  t.test('etcd: a server that accepts connections but never answers fails after timeoutMs, not never', async t => {
    const sockets = new Set<Socket>()
    const silent = createServer(s => { sockets.add(s) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', () => resolve()))
    t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
    const start = Date.now()
    const err = await openMetadataStore(`etcd://127.0.0.1:${(silent.address() as AddressInfo).port}`, {timeoutMs: 1000}).then(() => undefined, (e: unknown) => e)
    const elapsed = Date.now() - start
    t.match(err, {code: ErrorCode.METADATA_UNAVAILABLE, message: /within 1000 ms/})
    t.ok(elapsed >= 900 && elapsed < 4000, `gave up after ${elapsed} ms`)
  })

  t.test('etcd: fails over from a host that refuses to one that answers', async t => {
    const refusing = await deadPort()
    const store = await opened(t, () => openMetadataStore(`etcd://127.0.0.1:${refusing},${target.host}:${target.port}${prefix}`))
    const created = await store.createLedger(newLedger())
    t.same(await store.getLedger(created.value.ledgerId), created, 'writes and reads reach the live host')
    t.ok(await store.put(`failover/${process.pid}`, Buffer.from('x'), null) > 0n)
  })

  t.test('etcd: when etcd goes silent mid-session, calls fail within timeoutMs and recover after', async t => {
    const proxy = await TcpProxy.start(target)
    t.teardown(() => proxy.close())
    const store = await opened(t, () => openMetadataStore(`etcd://127.0.0.1:${proxy.port}${prefix}`, {timeoutMs: 1000}))
    const created = await store.createLedger(newLedger())
    proxy.freeze()
    for (const [what, call] of [
      ['read', () => store.getLedger(created.value.ledgerId)],
      ['write', () => store.updateLedger({...created.value, state: 'IN_RECOVERY'}, created.version)],
    ] as const) {
      const start = Date.now()
      const err = await (call() as Promise<unknown>).then(() => undefined, (e: unknown) => e)
      const elapsed = Date.now() - start
      t.match(err, {code: ErrorCode.METADATA_UNAVAILABLE, retriable: true}, `${what}: METADATA_UNAVAILABLE (${(err as Error).message})`)
      t.ok(elapsed < 4000, `${what}: gave up after ${elapsed} ms`)
    }
    proxy.thaw()
    const now = await store.getLedger(created.value.ledgerId)
    t.equal(now.value.state, 'OPEN', 'the write whose answer never came was not applied (it never reached etcd)')
    t.equal((await store.updateLedger({...now.value, state: 'IN_RECOVERY'}, now.version)).value.state, 'IN_RECOVERY', 'writes work again')
  })

  t.test('etcd: a bookie cut off from etcd for longer than its lease comes back by itself', async t => {
    const proxy = await TcpProxy.start(target)
    t.teardown(() => proxy.close())
    const observer = await opened(t, () => openMetadataStore(url))
    const cutOff = await opened(t, () => openMetadataStore(`etcd://127.0.0.1:${proxy.port}${prefix}`, {timeoutMs: 500}))
    const id = uniqueBookieId('partition')
    const reg = await cutOff.registerBookie(bookie(id), {ttlMs: 1000})
    const alive = async (): Promise<boolean> => (await statusOf(observer, id))?.alive === true
    t.ok(await alive(), 'alive before the cut')
    proxy.freeze()
    const expired = await waitFor('the lease to expire during the cut', async () => !(await alive()), 8000)
    t.pass(`listed down ${expired} ms into the cut (refreshes fail with METADATA_UNAVAILABLE meanwhile)`)
    t.notOk(reg.signal.aborted, 'an unreachable store does not end the registration')
    proxy.thaw()
    // An update right after the cut writes under the expired lease (NOT_FOUND) or after the refresh re-granted it.
    await reg.update(bookie(id, {ledgers: 3}))
    const back = await waitFor('the bookie to be alive again', alive, 8000)
    t.match(await statusOf(observer, id), {alive: true, ledgers: 3}, `alive again after ${back} ms under a new lease, with the update`)
    await reg.close()
    t.match(await statusOf(observer, id), {alive: false})
  })

  t.test('etcd: a write whose answer is lost is reported as unknown, never retried blindly', async t => {
    const proxy = await TcpProxy.start(target)
    t.teardown(() => proxy.close())
    const store = await opened(t, () => openMetadataStore(`etcd://127.0.0.1:${proxy.port}${prefix}`, {timeoutMs: 2000}))
    const created = await store.createLedger(newLedger())
    proxy.dropReplies(true)
    const err = await store.updateLedger({...created.value, state: 'IN_RECOVERY'}, created.version).then(() => undefined, (e: unknown) => e)
    t.match(err, {code: ErrorCode.METADATA_UNAVAILABLE, message: /may or may not have been applied/}, 'the caller is told the outcome is unknown')
    await t.rejects(store.getLedger(created.value.ledgerId), {code: ErrorCode.METADATA_UNAVAILABLE}, 'reads are retried, then give up')
    proxy.dropReplies(false)
    // It was applied: a blind retry of the CAS would have reported BAD_VERSION for a write that won.
    const now = await store.getLedger(created.value.ledgerId)
    t.equal(now.value.state, 'IN_RECOVERY', 're-reading shows what happened')
    t.ok(now.version > created.version)
  })

  t.test('etcd: a registration whose lease is revoked under it takes a new lease on its next write', async t => {
    const store = await opened(t, () => openMetadataStore(url))
    const id = uniqueBookieId('revoked')
    const reg = await store.registerBookie(bookie(id))
    const aliveKey = `${prefix}/bookies/alive/${id}`
    const range = await (await fetch(`${etcd.endpoint}/v3/kv/range`, {method: 'POST', body: JSON.stringify({key: Buffer.from(aliveKey).toString('base64')})})).json() as {kvs?: Array<{lease?: string}>}
    const lease = range.kvs?.[0]?.lease
    t.ok(lease !== undefined, 'the alive key is on a lease')
    await fetch(`${etcd.endpoint}/v3/lease/revoke`, {method: 'POST', body: JSON.stringify({ID: lease})})
    t.match(await statusOf(store, id), {alive: false}, 'revoked (as etcd does when a lease expires): down')
    // The default ttl (10 s) keeps the refresh timer out of the way: this is the update's own recovery.
    await reg.update(bookie(id, {state: 'read-only'}))
    t.match(await statusOf(store, id), {alive: true, state: 'read-only'}, 'the update re-leased and published')
    t.notOk(reg.signal.aborted)
    await reg.close()
  })

  t.test('etcd: records it did not write: CORRUPT, or BAD_FORMAT_VERSION when newer', async t => {
    const store = await opened(t, () => openMetadataStore(url))
    const bad = await store.createLedger(newLedger())
    await rawPut(etcd.endpoint, `${prefix}/ledgers/${padLedgerId(bad.value.ledgerId)}`, 'not json')
    await t.rejects(store.getLedger(bad.value.ledgerId), {code: ErrorCode.CORRUPT}, 'garbage under a ledger key')
    await rawPut(etcd.endpoint, `${prefix}/ledgers/${padLedgerId(bad.value.ledgerId)}`, JSON.stringify({format: 7}))
    await t.rejects(store.getLedger(bad.value.ledgerId), {code: ErrorCode.BAD_FORMAT_VERSION}, 'a newer record format')
    const other = `${prefix}-newer`
    await rawPut(etcd.endpoint, `${other}/format`, JSON.stringify({format: 2}))
    await t.rejects(openMetadataStore(`${etcd.url}${other}`), {code: ErrorCode.BAD_FORMAT_VERSION, message: /format 2/}, 'a prefix laid out by a newer logctl')
    await rawPut(etcd.endpoint, `${other}/format`, '{oops')
    await t.rejects(openMetadataStore(`${etcd.url}${other}`), {code: ErrorCode.CORRUPT}, 'a format key that is not JSON')

    // A key under ledgers/ that no driver would write, in a prefix of its own (listLedgers elsewhere stays clean).
    const planted = `${prefix}-planted`
    const store2 = await opened(t, () => openMetadataStore(`${etcd.url}${planted}`))
    await store2.createLedger(newLedger())
    await rawPut(etcd.endpoint, `${planted}/ledgers/not-an-id`, '{}')
    await t.rejects(store2.listLedgers(), {code: ErrorCode.CORRUPT, message: /not-an-id/}, 'a foreign key among the ledgers')
  })
}
