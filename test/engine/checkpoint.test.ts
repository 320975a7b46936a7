// Checkpoints are written from the index's own arrays over several turns (no copy on the main thread):
// the index keeps a snapshot's arrays unchanged by copying on write, and what is read back is the state of
// the snapshot's moment, whatever changed while it was being written.
import t from 'tap'
import {encodeCheckpoint, readCheckpoint, writeCheckpoint} from '../../src/engine/checkpoint.js'
import {LedgerIndex} from '../../src/engine/ledger-index.js'
import {EngineState} from '../../src/engine/state.js'
import {tempDir} from '../helpers/entries.js'

const copyOf = (l: LedgerIndex): number[][] => Object.values(l.columns()).map(c => [...c])

t.test('a snapshot of a ledger index stays as it was while the index changes (copy on write)', async t => {
  const l = new LedgerIndex()
  for (let i = 0; i < 1000; i += 2) l.put(i, 1, i * 10, 10, i)
  const before = copyOf(l)
  const snap = l.snapshot()
  const arrays = snap.ids.buffer
  l.put(1001, 7, 7, 7, 7) // appended past the snapshot: no copy needed
  t.equal(l.columns().ids.buffer, arrays, 'an append writes past the snapshot, in the same arrays')
  l.put(4, 9, 9, 9, 9) // replaces a location inside it
  l.put(5, 9, 9, 9, 9) // inserts before its end
  t.same(Object.values(snap).map(c => [...c]), before, 'the snapshot still shows its moment')
  t.not(l.columns().ids.buffer, arrays, 'the index moved to arrays of its own')
  t.same(l.get(4), {segmentId: 9, offset: 9, length: 9, digest: 9})
  t.same(l.get(5), {segmentId: 9, offset: 9, length: 9, digest: 9})
  t.same(l.get(1001), {segmentId: 7, offset: 7, length: 7, digest: 7})
  t.equal(l.size, 502)
  l.release()
  const now = l.columns().ids.buffer
  l.put(4, 8, 8, 8, 8)
  t.equal(l.columns().ids.buffer, now, 'released: changes go in place again')
})

t.test('a checkpoint written while the index changes reads back as the state of its moment', async t => {
  const dir = tempDir(t)
  const state = new EngineState()
  const big = state.ledgerFor(1n) // large enough for its columns to be written from the index's arrays
  for (let i = 0; i < 20_000; i++) big.put(i, 3, 64 + i * 1080, 1080, i * 7)
  big.lac = 19_998
  big.fenced = true
  for (let k = 2n; k < 40n; k++) {
    const l = state.ledgerFor(k)
    for (let i = 0; i < 10; i++) l.put(i * 3, 4, i * 100, 100, i)
    l.lac = 20
  }
  state.segment(3).sealed = true
  state.segment(4)
  state.tombstones.add(99n)
  const expected = [...state.ledgers].map(([id, l]) => [id, l.fenced, l.lac, copyOf(l)])
  const enc = encodeCheckpoint(state, {segmentId: 4, offset: 4096, lastSeq: 17n})
  const writing = writeCheckpoint(dir, enc)
  big.put(10, 5, 5, 5, 5) // while it is being written: a replaced location, an insert, an append
  big.put(20_000, 5, 5, 5, 5)
  state.ledgerFor(2n).put(1, 5, 5, 5, 5)
  await writing
  const back = new EngineState()
  t.same(readCheckpoint(dir, back), {segmentId: 4, offset: 4096, lastSeq: 17n})
  t.same([...back.ledgers].map(([id, l]) => [id, l.fenced, l.lac, copyOf(l)]), expected, 'every ledger as it was at the snapshot')
  t.same([...back.tombstones], [99n])
  t.same(back.segments.get(3)?.sealed, true)
  t.ok(back.segments.has(4))
  t.same(big.get(10), {segmentId: 5, offset: 5, length: 5, digest: 5}, 'and the live index kept the changes')
})
