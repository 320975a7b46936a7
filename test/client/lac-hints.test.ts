/**
 * LAC hints (docs/PROTOCOL.md "LAC hints"): a writer tells a bookie that has been slow to answer the LAC it
 * would otherwise learn only from the next batch it gets. Three bookies in this process (real servers and
 * engines, registered in a real SQLite metadata store), one of them with a journal that holds each batch
 * back for a second, so that it answers last while the other two confirm.
 */
import {join} from 'node:path'
import t from 'tap'
import {LogctlClient} from '../../src/client/client.js'
import type {WriterOptions} from '../../src/client/ledger-writer.js'
import {Bookie, createLogger} from '../../src/server/bookie.js'
import {payloadFor, tempDir} from '../helpers/entries.js'

async function threeBookies(t: Parameters<typeof tempDir>[0]): Promise<{metadata: string; slow: Bookie}> {
  const dir = tempDir(t, 'logctl-hints-')
  const metadata = `sqlite:${join(dir, 'meta.db')}`
  const start = async (name: string, maxWaitMicros: number): Promise<Bookie> => {
    const b = await Bookie.start({
      dataDir: join(dir, name), listen: '127.0.0.1:0', metadata, logger: createLogger('error'),
      engine: {preallocBytes: 64 * 1024, compactIntervalMs: 0, maxWaitMicros},
    })
    t.teardown(() => b.stop())
    return b
  }
  await start('fast-1', 0)
  await start('fast-2', 0)
  return {metadata, slow: await start('slow', 1_000_000)}
}

/**
 * What the slow bookie knows when it first learns a LAC: the LAC, and how many entries it had made durable
 * by then (read in the same turn, before any timer of its journal can run). One batch in flight per bookie,
 * no explicit LAC, and round one's entries carry LAC -1 (all appended before any confirmation). Round one
 * (ten entries) is confirmed by the fast two while the slow one holds it in its journal; round two (one
 * entry) finds the slow one still at its limit: its confirmation sends the hint. Without hints, the slow
 * bookie hears of a LAC only from round two's batch, which it gets once it answered round one (durable).
 */
async function slowBookieLearns(t: Parameters<typeof tempDir>[0], writer: WriterOptions): Promise<{lac: bigint; durable: number}> {
  const {metadata, slow} = await threeBookies(t)
  const client = await LogctlClient.connect({metadata, writer: {maxRequestsPerBookie: 1, explicitLacMs: 0, ...writer}})
  t.teardown(() => client.close())
  const w = await client.createLedger({ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  await Promise.all(Array.from({length: 10}, (_, i) => w.append(payloadFor(w.ledgerId, BigInt(i)))))
  // So that the slow bookie has been at its limit for more than lacHintMs (1 ms) when round two is confirmed.
  await new Promise(resolve => setTimeout(resolve, 5))
  await w.append(payloadFor(w.ledgerId, 10n))
  const lac = await slow.engine.waitForLac(w.ledgerId, -1n, 20_000)
  return {lac, durable: slow.engine.ledger(w.ledgerId).entries}
}

t.test('a bookie slow to answer gets the LAC hinted, up to the entries it holds', async t => {
  const {lac, durable} = await slowBookieLearns(t, {})
  t.equal(lac, 9n, 'LAC 9: the writer\'s is 10, but entry 10 still waits at the writer for the slow bookie\'s window')
  t.equal(durable, 0, 'learnt while round one was still in its journal: from the hint')
})

t.test('lacHintMs 0: the slow bookie learns the LAC only from its next batch, after answering the last', async t => {
  const {lac, durable} = await slowBookieLearns(t, {lacHintMs: 0})
  t.equal(lac, 9n, 'LAC 9, carried by entry 10')
  t.equal(durable, 10, 'only once round one was durable there')
})
