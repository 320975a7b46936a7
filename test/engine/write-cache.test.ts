// The write cache evicts oldest-first within its byte budget; a re-put entry is not evicted by its old slot.
// What broke: eviction walked the Map's deleted holes (12-39 µs each once full); it is a queue now.
import t from 'tap'
import {WriteCache} from '../../src/engine/write-cache.js'

const e = (size: number, digest = 0): {lac: bigint; digest: number; payload: Buffer} => ({lac: -1n, digest, payload: Buffer.alloc(size)})

t.test('FIFO eviction by bytes, re-put keeps the newest copy', async t => {
  const c = new WriteCache(300)
  c.put(1n, 0, e(100))
  c.put(1n, 1, e(100))
  c.put(2n, 0, e(100))
  t.same(c.size, {entries: 3, bytes: 300})
  c.put(1n, 0, e(100, 7)) // re-put: the old slot of 1/0 must not evict the new copy later
  t.same(c.size, {entries: 3, bytes: 300})
  c.put(3n, 0, e(100)) // evicts the oldest live slot: 1/1 (1/0's first slot is stale)
  t.equal(c.get(1n, 1), undefined)
  t.equal(c.get(1n, 0)?.digest, 7)
  t.ok(c.get(2n, 0))
  t.ok(c.get(3n, 0))
  t.same(c.size, {entries: 3, bytes: 300})
  t.equal(c.hits, 3)
  t.equal(c.misses, 1)
  c.put(4n, 0, e(1000)) // larger than the whole budget: not cached
  t.equal(c.get(4n, 0), undefined)
  const off = new WriteCache(0)
  off.put(1n, 0, e(1))
  t.equal(off.get(1n, 0), undefined)
})

t.test('a long run stays within budget and keeps the newest entries', async t => {
  const c = new WriteCache(64 * 1024)
  for (let i = 0; i < 100_000; i++) c.put(1n, i, e(1024))
  t.same(c.size, {entries: 64, bytes: 64 * 1024})
  t.ok(c.get(1n, 99_999))
  t.equal(c.get(1n, 99_935), undefined)
  t.ok(c.get(1n, 99_936))
})

t.test('several slabs: whatever get() returns is the bytes put, and the newest entries are there', async t => {
  // Slabs of 300 bytes, 3 of them: runs of 1-4 entries of 20-120 bytes skip the end of a slab they do not
  // fit in, and wrap after the last one. A model of what was put checks every answer, byte for byte.
  const c = new WriteCache(900, 300)
  const model = new Map<number, Buffer>()
  let id = 0
  let seed = 7
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  let wrong = 0
  let newestMissing = 0
  for (let round = 0; round < 2000; round++) {
    const n = 1 + rand(4)
    const ids: number[] = []
    const entries: Array<{lac: bigint; digest: number; payload: Buffer}> = []
    for (let k = 0; k < n; k++) {
      const payload = Buffer.alloc(20 + rand(100), id % 251)
      payload.writeUInt32LE(id, 0)
      model.set(id, payload)
      ids.push(id)
      entries.push({lac: BigInt(id - 1), digest: id, payload})
      id++
    }
    c.putRun(1n, ids, entries)
    for (let probe = Math.max(0, id - 40); probe < id; probe++) {
      const got = c.get(1n, probe)
      if (got === undefined) {
        if (probe >= id - n) newestMissing++
        continue
      }
      if (got.digest !== probe || !got.payload.equals(model.get(probe)!)) wrong++
    }
    if (c.size.bytes > 900) t.fail(`over budget: ${c.size.bytes}`)
  }
  t.equal(wrong, 0, 'no answer ever held another entry\'s bytes')
  t.equal(newestMissing, 0, 'the run just put is always there')
})

t.test('reading a range goes run by run from the last hit, and never through a run that was evicted', async t => {
  const bytes = (v: number): Buffer => Buffer.alloc(100, v)
  const c = new WriteCache(1000, 500)
  // Two runs of ledger 1 (ids 0-2, 3-4), then ledger 2.
  c.putRun(1n, [0, 1, 2], [0, 1, 2].map(v => ({lac: -1n, digest: v, payload: bytes(v)})))
  c.putRun(1n, [3, 4], [3, 4].map(v => ({lac: -1n, digest: v, payload: bytes(v)})))
  for (let i = 0; i < 5; i++) t.ok(c.get(1n, i)?.payload.equals(bytes(i)), `entry ${i} as put`)
  t.equal(c.get(2n, 0), undefined, 'the last hit belongs to ledger 1: no answer for ledger 2 from it')
  // Overwrite the whole ring: the runs of ledger 1 go, and their bytes in the ring are overwritten.
  for (let k = 0; k < 4; k++) c.putRun(3n, [k * 2, k * 2 + 1], [0, 1].map(() => ({lac: -1n, digest: 99, payload: bytes(99)})))
  t.equal(c.get(1n, 4), undefined, 'the run of the last hit was evicted: not used')
  t.equal(c.get(1n, 0), undefined)
  t.ok(c.get(3n, 7)?.payload.equals(bytes(99)))
})

t.test('get() copies unless asked for a view; a view is the ring itself (owns), a copy is not', async t => {
  const c = new WriteCache(1000, 500)
  c.putRun(1n, [0], [{lac: -1n, digest: 1, payload: Buffer.alloc(100, 1)}])
  const copy = c.get(1n, 0)!.payload
  const view = c.get(1n, 0, true)!.payload
  t.ok(c.owns(view), 'a view is of the ring')
  t.notOk(c.owns(copy), 'a copy is not')
  t.notOk(c.owns(Buffer.alloc(500)), 'a buffer of the slab size that is not a slab is not')
  // Write over the whole ring: the view shows the new bytes, the copy keeps the old ones.
  for (let k = 0; k < 20; k++) c.putRun(2n, [k], [{lac: -1n, digest: 2, payload: Buffer.alloc(100, 2)}])
  t.ok(copy.equals(Buffer.alloc(100, 1)), 'the copy is intact')
  t.notOk(view.equals(Buffer.alloc(100, 1)), 'the view was written over (why callers must use it at once)')
})
