// Replicated ledgers against real bookie daemons (child processes) and a real SQLite metadata store:
// bookie crashes and hangs during writes, writer crashes, recovery races, a whole-cluster restart.
// Invariants checked: no acknowledged entry is lost, ids are dense and in order, bytes are identical,
// the old writer is fenced, every reader agrees on the last entry.
import http2 from 'node:http2'
import t from 'tap'
import {LogctlClient} from '../../src/client/client.js'
import {ErrorCode} from '../../src/errors.js'
import {connectBookie} from '../../src/net/bookie-client.js'
import {Cluster} from '../helpers/cluster.js'
import {payloadFor} from '../helpers/entries.js'
import {checkLedger, WriterChild} from './helpers.js'

const TIMEOUT_MS = 2000

function byId(cluster: Cluster, id: string): Cluster['bookies'][number] {
  const b = cluster.bookies.find(x => x.id === id)
  if (!b) throw new Error(`no bookie ${id} in the cluster`)
  return b
}

async function connect(t: {teardown: (fn: () => unknown) => void}, cluster: Cluster): Promise<LogctlClient> {
  const c = await LogctlClient.connect({metadata: cluster.metadataUrl, bookieTimeoutMs: TIMEOUT_MS})
  t.teardown(() => c.close())
  return c
}

/** Append `total` entries, `inFlight` at a time; calls `at(n)` once n entries are acknowledged. */
async function appendAll(w: Awaited<ReturnType<LogctlClient['createLedger']>>, total: number, inFlight: number, at: Map<number, () => unknown>): Promise<bigint[]> {
  const acked: bigint[] = []
  let next = 0n
  const lane = async (): Promise<void> => {
    while (next < BigInt(total)) {
      const id = next++
      const got = await w.append(payloadFor(w.ledgerId, id))
      if (got !== id) throw new Error(`append of entry ${id} resolved as ${got}`)
      acked.push(got)
      const hook = at.get(acked.length)
      if (hook) await hook()
    }
  }
  await Promise.all(Array.from({length: inFlight}, lane))
  return acked
}

for (const [E, Qw, Qa] of [[3, 3, 2], [3, 2, 2]] as const) {
  t.test(`SIGKILL a bookie while appending (E=${E} Qw=${Qw} Qa=${Qa}): appends go on, nothing lost`, async t => {
    const cluster = await Cluster.start(t, {bookies: 4})
    const client = await connect(t, cluster)
    const w = await client.createLedger({ensembleSize: E, writeQuorum: Qw, ackQuorum: Qa})
    const victim = w.metadata.ensembles[0]!.bookies[1]!
    const acked = await appendAll(w, 3000, 64, new Map([[500, () => byId(cluster, victim).kill()]]))
    t.equal(acked.length, 3000, 'every append succeeded')
    await w.close()
    const m = await client.ledgerInfo(w.ledgerId)
    t.ok(m.ensembles.length >= 2, 'the ensemble changed')
    t.notOk(m.ensembles.at(-1)!.bookies.includes(victim), 'the dead bookie was replaced')
    t.equal(m.lastEntryId, 2999n)
    t.equal(await checkLedger(client, w.ledgerId, acked, msg => t.fail(msg)), 3000, 'every entry reads back once, in order, byte for byte')
  })
}

t.test('SIGSTOP a bookie: the writer times it out and changes ensemble; a follower goes on; SIGCONT later does no harm', async t => {
  const cluster = await Cluster.start(t, {bookies: 4})
  const client = await connect(t, cluster)
  const w = await client.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 3})
  // The victim is the first bookie of the ensemble: the one a follower's tail reads go to first.
  const victim = byId(cluster, w.metadata.ensembles[0]!.bookies[0]!)
  const reader = await (await connect(t, cluster)).openLedger(w.ledgerId)
  const followed = (async () => {
    const ids: bigint[] = []
    for await (const e of reader.follow({to: 1599n, pollMs: 500})) {
      if (!e.payload.equals(payloadFor(w.ledgerId, e.entryId))) t.fail(`follower: entry ${e.entryId} differs`)
      ids.push(e.entryId)
    }
    return ids
  })()
  const acked = await appendAll(w, 1500, 32, new Map([[300, () => victim.pause()]]))
  t.equal(acked.length, 1500, 'every append succeeded (Qa=3: none could complete without a replacement)')
  const m = await client.ledgerInfo(w.ledgerId)
  t.ok(m.ensembles.length >= 2, 'the hung bookie was replaced')
  victim.resume()
  // After SIGCONT the old bookie answers its stale requests; the writer must ignore them.
  for (let i = 1500n; i < 1600n; i++) await w.append(payloadFor(w.ledgerId, i))
  await w.close()
  t.equal(await checkLedger(client, w.ledgerId, [...acked, 1599n], msg => t.fail(msg)), 1600)
  t.same(await followed, Array.from({length: 1600}, (_, i) => BigInt(i)), 'the follower got every entry once, in order, through the hang')
})

t.test('a follower whose tail bookie stops (SIGSTOP) moves to another bookie of the ensemble and keeps up', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  // The writer never gives up on the stopped bookie during the test (Qa=2: it goes on with the other two),
  // and the follower's own wait is long: only noticing the lag can bring it the new entries in time.
  const writerClient = await LogctlClient.connect({metadata: cluster.metadataUrl, bookieTimeoutMs: 60_000})
  t.teardown(() => writerClient.close())
  const w = await writerClient.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  const victim = byId(cluster, w.metadata.ensembles[0]!.bookies[0]!) // where a follower's tail stream goes first
  const reader = await (await connect(t, cluster)).openLedger(w.ledgerId)
  const ids: bigint[] = []
  const ac = new AbortController()
  const followed = (async () => {
    for await (const e of reader.follow({pollMs: 20_000, signal: ac.signal})) {
      if (!e.payload.equals(payloadFor(w.ledgerId, e.entryId))) t.fail(`follower: entry ${e.entryId} differs`)
      ids.push(e.entryId)
    }
  })()
  const until = async (n: number, ms: number, what: string): Promise<void> => {
    const end = Date.now() + ms
    while (ids.length < n && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
    t.equal(ids.length, n, what)
  }
  for (let i = 0n; i < 100n; i++) await w.append(payloadFor(w.ledgerId, i))
  await until(100, 20_000, 'the follower is caught up')
  victim.pause()
  try {
    await Promise.all(Array.from({length: 100}, (_, i) => w.append(payloadFor(w.ledgerId, 100n + BigInt(i)))))
    // Its stream would time out after pollMs + 2 s (22 s); the lag check moves it within a few hundred ms.
    await until(200, 15_000, 'the follower got the entries appended while its tail bookie was stopped, well before its stream would time out')
    t.equal((await writerClient.ledgerInfo(w.ledgerId)).ensembles.length, 1, 'no ensemble change: the stopped bookie is still in the ensemble')
  } finally {
    victim.resume()
  }
  ac.abort()
  for (let i = 200n; i < 210n; i++) await w.append(payloadFor(w.ledgerId, i))
  await w.close()
  await followed
  t.same(ids, Array.from({length: ids.length}, (_, i) => BigInt(i)), 'once each, in order')
})

/** Requests a bookie answered on `route` so far (its /metrics). */
async function answered(address: string, route: string): Promise<number> {
  const session = http2.connect(`http://${address}`)
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      const req = session.request({':path': '/metrics'})
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      req.on('error', reject)
    })
    let n = 0
    for (const m of text.matchAll(/^logctl_bookie_request_seconds_count\{([^}]*)\} (\d+)$/gm)) if (m[1]!.includes(`route="${route}"`)) n += Number(m[2])
    return n
  } finally {
    session.close()
  }
}

t.test('a follower that falls behind catches up through its tail stream, without range reads', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const client = await connect(t, cluster)
  const w = await client.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  const reader = await (await connect(t, cluster)).openLedger(w.ledgerId)
  const ids: bigint[] = []
  const ac = new AbortController()
  let release: () => void = () => undefined
  const gate = new Promise<void>(resolve => { release = resolve })
  const followed = (async () => {
    for await (const e of reader.follow({pollMs: 1000, signal: ac.signal})) {
      ids.push(e.entryId)
      if (ids.length === 10) await gate // stops taking entries: the stream's backlog builds up
    }
  })()
  const until = async (n: number, what: string): Promise<void> => {
    const end = Date.now() + 30_000
    while (ids.length < n && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 10))
    t.equal(ids.length, n, what)
  }
  for (let i = 0n; i < 10n; i++) await w.append(payloadFor(w.ledgerId, i))
  await until(10, 'the follower is caught up, on its tail stream')
  const before = (await Promise.all(cluster.addresses().map(a => answered(a, 'read')))).reduce((x, y) => x + y, 0)
  // A burst larger than what the client queues before it stops reading (8 MiB) and the stream's window (8 MiB)
  // together: the bookie holds the rest back, then sends it in 1 MiB messages whose LAC runs ahead of their
  // entries (without preferring the stream, the follower would read that range; checked to fail so).
  const big = 24_000
  await Promise.all(Array.from({length: big}, (_, i) => w.append(Buffer.alloc(1024, i))))
  release()
  await until(10 + big, 'the follower got the burst')
  const after = (await Promise.all(cluster.addresses().map(a => answered(a, 'read')))).reduce((x, y) => x + y, 0)
  t.equal(after - before, 0, 'no range reads: the stream brought the backlog')
  ac.abort()
  await w.close()
  await followed
  t.same(ids, Array.from({length: ids.length}, (_, i) => BigInt(i)), 'once each, in order')
})

t.test('a caught-up follower on an idle ledger: its poll ends after its wait, with nothing new', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const client = await connect(t, cluster)
  const w = await client.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  for (let i = 0n; i < 20n; i++) await w.append(payloadFor(w.ledgerId, i))
  const reader = await (await connect(t, cluster)).openLedger(w.ledgerId)
  t.teardown(() => reader.close())
  for (let tries = 0; reader.lastConfirmed < 19n && tries < 200; tries++) await reader.refresh(100)
  t.equal(reader.lastConfirmed, 19n, 'every bookie has the last entry confirmed (explicit LAC)')
  t.equal((await reader.read(0n, 19n)).length, 20, 'read up to the end with a range read')
  // Caught up: each poll opens (or keeps) a tail stream that has nothing to send until the wait is over, while
  // the reader asks the other bookies for their LAC. Their 19 is not ahead of a stream due to bring 20; taken
  // as ahead (a silent stream counted as LAC -1) the reader hopped from bookie to bookie every ~300 ms and the
  // poll never ended: no abort, no close was ever noticed (checked to fail so).
  for (let i = 0; i < 3; i++) {
    const stuck = new Promise<'stuck'>(resolve => setTimeout(() => resolve('stuck'), 20_000).unref())
    t.same(await Promise.race([reader.poll(20n, 1000), stuck]), [], `poll ${i + 1} ended with nothing new`)
  }
  await w.append(payloadFor(w.ledgerId, 20n))
  let got: bigint[] = []
  for (let tries = 0; got.length === 0 && tries < 20; tries++) got = (await reader.poll(20n, 1000)).map(e => e.entryId)
  t.same(got, [20n], 'the next entry comes through the tail stream')
  await w.close()
})

t.test('an idle writer sends no explicit LAC to a bookie that has not been sent its entries yet', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  // The writer never gives up on the stopped bookie (Qa=2: it goes on with the other two).
  const writerClient = await LogctlClient.connect({metadata: cluster.metadataUrl, bookieTimeoutMs: 60_000})
  t.teardown(() => writerClient.close())
  const w = await writerClient.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  const behind = byId(cluster, w.metadata.ensembles[0]!.bookies[2]!)
  for (let i = 0n; i < 10n; i++) await w.append(payloadFor(w.ledgerId, i))
  await new Promise(resolve => setTimeout(resolve, 200)) // the writer goes idle: its explicit LAC goes out now
  const before = await answered(behind.address, 'lac-write')
  behind.pause()
  try {
    // More than its two requests in flight hold: the rest waits in the writer for the stopped bookie.
    await Promise.all(Array.from({length: 2000}, (_, i) => w.append(payloadFor(w.ledgerId, 10n + BigInt(i)))))
    await new Promise(resolve => setTimeout(resolve, 300)) // idle again: explicit LACs go to the others only
  } finally {
    behind.resume()
  }
  const c = connectBookie(behind.address)
  t.teardown(() => c.close())
  const end = Date.now() + 30_000
  while ((await c.readLac(w.ledgerId, -1n, 0)).lastEntryId < 2009n && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal((await c.readLac(w.ledgerId, -1n, 0)).lastEntryId, 2009n, 'the bookie caught up once resumed')
  t.equal(await answered(behind.address, 'lac-write') - before, 0, 'no explicit LAC reached it ahead of its entries')
  await w.close()
})

t.test('SIGKILL the writer: recovery closes the ledger with every acknowledged entry; racing recoverers agree', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const client = await connect(t, cluster)
  const writer = new WriterChild(cluster.metadataUrl, [3, 3, 2])
  await writer.until(() => writer.acked.length >= 400, 'the writer has 400 acknowledged entries', 30_000)
  writer.kill('SIGKILL')
  await writer.exited
  const other = await connect(t, cluster)
  const [a, b] = await Promise.all([client.recoverLedger(writer.ledgerId), other.recoverLedger(writer.ledgerId)])
  t.equal(a.state, 'CLOSED')
  t.equal(a.lastEntryId, b.lastEntryId, 'two recoverers racing agree on the last entry')
  t.equal((await client.ledgerInfo(writer.ledgerId)).lastEntryId, a.lastEntryId)
  const n = await checkLedger(client, writer.ledgerId, writer.acked, msg => t.fail(msg))
  t.ok(n >= writer.acked.length, `${n} entries, ${writer.acked.length} acknowledged`)
})

t.test('a writer paused (SIGSTOP) during recovery gets FENCED when it resumes', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const client = await connect(t, cluster)
  const writer = new WriterChild(cluster.metadataUrl, [3, 2, 2])
  await writer.until(() => writer.acked.length >= 300, 'the writer has 300 acknowledged entries', 30_000)
  writer.kill('SIGSTOP')
  const recovered = await client.recoverLedger(writer.ledgerId)
  writer.kill('SIGCONT')
  await writer.until(() => writer.error !== undefined, 'the old writer reports an error', 30_000)
  t.equal(writer.error, ErrorCode.FENCED, 'the old writer learns it was fenced')
  await writer.exited
  const beyond = writer.acked.filter(id => id > recovered.lastEntryId)
  t.same(beyond, [], 'nothing was acknowledged to the old writer beyond the recovered last entry')
  await checkLedger(client, writer.ledgerId, writer.acked, msg => t.fail(msg))
})

t.test('SIGKILL every bookie, start them again: every closed ledger reads back intact', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const client = await connect(t, cluster)
  const ledgers: Array<{id: bigint; acked: bigint[]}> = []
  for (const [E, Qw, Qa] of [[3, 3, 2], [3, 2, 1], [2, 2, 2]] as const) {
    const w = await client.createLedger({ensembleSize: E, writeQuorum: Qw, ackQuorum: Qa})
    ledgers.push({id: w.ledgerId, acked: await appendAll(w, 700, 16, new Map())})
    await w.close()
  }
  for (const b of cluster.bookies) await b.kill()
  for (const b of cluster.bookies) await b.restart()
  const fresh = await connect(t, cluster)
  for (const l of ledgers) t.equal(await checkLedger(fresh, l.id, l.acked, msg => t.fail(msg)), 700, `ledger ${l.id} intact`)
})

t.test('not enough bookies: a clear NOT_ENOUGH_BOOKIES; bad quorums: BAD_INPUT', async t => {
  const cluster = await Cluster.start(t, {bookies: 2})
  const client = await connect(t, cluster)
  await t.rejects(client.createLedger({ensembleSize: 3}), {code: ErrorCode.NOT_ENOUGH_BOOKIES})
  await t.rejects(client.createLedger({ensembleSize: 2, writeQuorum: 3}), {code: ErrorCode.BAD_INPUT})
  await t.rejects(client.createLedger({ensembleSize: 2, writeQuorum: 2, ackQuorum: 0}), {code: ErrorCode.BAD_INPUT})
  const w = await client.createLedger({ensembleSize: 2, writeQuorum: 2, ackQuorum: 2})
  await w.append('one')
  await cluster.bookie(0).kill()
  await t.rejects(w.append('two'), {code: ErrorCode.NOT_ENOUGH_BOOKIES}, 'no replacement left: the writer fails clearly')
  await t.rejects(client.openLedger(123456n), {code: ErrorCode.NO_SUCH_LEDGER})
})
