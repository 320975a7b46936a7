// The journal's adaptive group-commit wait: idle flushes wait for more records only under concurrent load
// (records queued behind recent syncs), never for a lone writer whose next record follows the previous one's
// durability. Counted with the journal's own flush statistics; no timing is asserted.
import t, {type Test} from 'tap'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {ADAPTIVE_FLUSH_BYTES, BUSY_SYNCS, Journal, type JournalRecord} from '../../src/engine/journal.js'
import {RecordType} from '../../src/engine/format.js'
import {tempDir} from '../helpers/entries.js'

let nextId = 0n
function rec(size = 100): JournalRecord {
  const stored = Buffer.alloc(size, 7)
  return {type: RecordType.ENTRY, flags: 0, digest: 0, ledgerId: 1n, entryId: nextId++, lac: -1n, payloadLen: stored.length, stored}
}

async function start(t: Test, adaptiveWaitMicros: number): Promise<Journal> {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'segments'), {recursive: true})
  const j = await Journal.start(
    {dir, preallocBytes: 0, maxSegmentBytes: 64 * 1024 * 1024, maxBatchBytes: 4 * 1024 * 1024, maxWaitMicros: 0, adaptiveWaitMicros, directIo: true},
    {}, {segmentId: 0, position: 0, nextSeq: 0, create: true},
  )
  t.teardown(() => j.close())
  return j
}

/** `rounds` syncs that each have a record queued behind them: two appends in the same turn. */
async function concurrent(j: Journal, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.all([j.append(rec()), j.append(rec())])
}

async function lone(j: Journal, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await j.append(rec())
}

t.test('a lone writer (one record at a time) never waits', async t => {
  const j = await start(t, 1000)
  await lone(j, 100)
  t.equal(j.stats.flushWaited, 0, 'no idle flush waited')
  t.equal(j.stats.batches, 100, 'one sync per record')
})

t.test('under concurrent load idle flushes wait; once the load is gone they stop', async t => {
  const j = await start(t, 1000)
  await concurrent(j, BUSY_SYNCS - 1)
  await lone(j, 1)
  t.equal(j.stats.flushWaited, 0, `records queued behind ${BUSY_SYNCS - 1} syncs: not yet load`)
  await concurrent(j, 1)
  await lone(j, 3)
  t.ok(j.stats.flushWaited >= 1, `behind ${BUSY_SYNCS} of the last 32 syncs: idle flushes wait`)
  // Waiting lets a concurrent burst join one batch: appends made meanwhile share the sync.
  const batches = j.stats.batches
  await Promise.all([j.append(rec()), new Promise(resolve => setImmediate(resolve)).then(() => j.append(rec()))])
  t.equal(j.stats.batches, batches + 1, 'an append made a turn later joined the waiting flush')
  const before = j.stats.flushWaited
  await j.append(rec(ADAPTIVE_FLUSH_BYTES))
  t.equal(j.stats.flushWaited, before, 'a flush already large enough does not wait')
  await lone(j, 40)
  const waited = j.stats.flushWaited
  await lone(j, 10)
  t.equal(j.stats.flushWaited, waited, 'after 32+ syncs with nothing behind them, flushes no longer wait')
})

t.test('adaptiveWaitMicros 0: never waits, whatever the load', async t => {
  const j = await start(t, 0)
  await concurrent(j, 40)
  await lone(j, 10)
  t.equal(j.stats.flushWaited, 0)
})
