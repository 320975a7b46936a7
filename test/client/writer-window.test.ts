/**
 * The writer's window of unconfirmed entries, against a real bookie daemon: appends made while it is full
 * wait in call order, and the appends that fit when a confirmation makes room are admitted together (one
 * request), not one by one.
 */
import t from 'tap'
import {LogctlClient} from '../../src/client/client.js'
import {ErrorCode} from '../../src/errors.js'
import {Cluster} from '../helpers/cluster.js'
import {payloadFor} from '../helpers/entries.js'
import {raw, rawSession} from '../net/harness.js'

const WINDOW = 8
const TOTAL = 400

/** Add requests the bookie answered so far (each add-stream message counts as one), from its /metrics. */
async function addRequests(t: Parameters<typeof rawSession>[0], address: string): Promise<number> {
  const s = rawSession(t, address)
  const m = await raw(s, {':method': 'GET', ':path': '/metrics'})
  s.close()
  let n = 0
  for (const x of m.body.toString().matchAll(/^logctl_bookie_request_seconds_count\{[^}]*route="add"[^}]*\} (\d+)$/gm)) n += Number(x[1])
  return n
}

t.test(`appends beyond a full window of ${WINDOW} wait in call order and are admitted a window at a time`, async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const client = await LogctlClient.connect({metadata: cluster.metadataUrl, writer: {maxPendingEntries: WINDOW}})
  t.teardown(() => client.close())
  const w = await client.createLedger({ensembleSize: 1, writeQuorum: 1, ackQuorum: 1})
  const before = await addRequests(t, cluster.bookies[0]!.address)
  // All in one turn: the first WINDOW go out at once, the rest wait for room.
  const ids = await Promise.all(Array.from({length: TOTAL}, (_, i) => w.append(payloadFor(w.ledgerId, BigInt(i), 64))))
  t.same(ids, Array.from({length: TOTAL}, (_, i) => BigInt(i)), 'ids follow the order of the append() calls')
  const requests = (await addRequests(t, cluster.bookies[0]!.address)) - before
  // Each confirmation of a request frees room for up to WINDOW entries, admitted in one turn and sent as
  // one request: about TOTAL / WINDOW requests. Admitted one at a time, each would leave as a request of
  // its own (TOTAL requests).
  t.ok(requests <= 2 * TOTAL / WINDOW, `${requests} add requests for ${TOTAL} entries through a window of ${WINDOW}`)
  await w.close()
  const got = await (await client.openLedger(w.ledgerId)).read(0n, BigInt(TOTAL - 1))
  t.equal(got.length, TOTAL, 'every entry reads back')
  t.ok(got.every(e => e.payload.equals(payloadFor(w.ledgerId, e.entryId, 64))), 'byte for byte')
})

t.test('appends waiting for room when the writer fails are rejected with its error, in order', async t => {
  const cluster = await Cluster.start(t, {bookies: 1})
  const client = await LogctlClient.connect({metadata: cluster.metadataUrl, bookieTimeoutMs: 1000, writer: {maxPendingEntries: WINDOW}})
  t.teardown(() => client.close())
  const w = await client.createLedger({ensembleSize: 1, writeQuorum: 1, ackQuorum: 1})
  await w.append('first')
  // A recovery fences the ledger: the writer's next request is refused FENCED, and so is everything
  // appended after it, including the appends still waiting for room.
  await client.recoverLedger(w.ledgerId)
  const outcomes = await Promise.allSettled(Array.from({length: 3 * WINDOW}, (_, i) => w.append(`late ${i}`)))
  t.ok(outcomes.every(o => o.status === 'rejected' && (o.reason as {code?: string}).code === ErrorCode.FENCED), 'every append is refused FENCED, none hangs')
})
