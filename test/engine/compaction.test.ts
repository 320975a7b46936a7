// Deleting ledgers gives space back through compaction while adds and reads go on; a restart after
// compaction (with or without the checkpoint) sees the same state.
import t from 'tap'
import {readdirSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {StorageEngine} from '../../src/engine/engine.js'
import {ErrorCode} from '../../src/errors.js'
import {entry, payloadFor, tempDir} from '../helpers/entries.js'

const opts = {maxSegmentBytes: 64 * 1024, preallocBytes: 16 * 1024, compactIntervalMs: 0}
const segmentFiles = (dir: string): string[] => readdirSync(join(dir, 'segments'))

t.test('compaction during concurrent adds, then restart with and without the checkpoint', async t => {
  const dir = tempDir(t)
  const e = await StorageEngine.open({dir, ...opts})
  // Interleave a ledger we keep (1) with ledgers we delete (10..19), so every segment is mostly garbage.
  for (let i = 0n; i < 200n; i++) {
    await Promise.all([e.add(entry(1n, i, {size: 200})), ...Array.from({length: 10}, (_, k) => e.add(entry(10n + BigInt(k), i, {size: 400})))])
  }
  await e.fence(1n)
  for (let k = 10n; k < 19n; k++) await e.deleteLedger(k) // 19 stays
  const before = e.status()
  const filesBefore = segmentFiles(dir).length
  // Adds and reads go on while compaction runs.
  let stop = false
  const writer = (async () => {
    let i = 0n
    while (!stop && i < 5000n) await e.add({...entry(2n, i++, {size: 300})})
    return i
  })()
  const reader = (async () => {
    let n = 0
    while (!stop && n < 5000) {
      const id = BigInt(n++ % 200)
      if (!(await e.read(1n, id)).payload.equals(payloadFor(1n, id, 200))) throw new Error(`entry 1/${id} differs during compaction`)
    }
    return n
  })()
  const result = await e.compact()
  stop = true
  const written = await writer
  t.ok(await reader > 0, 'reads went on')
  t.ok(result.segmentsRemoved.length > 0, `removed ${result.segmentsRemoved.length} segments`)
  t.ok(result.bytesFreed > result.bytesCopied, `freed ${result.bytesFreed} bytes, copied ${result.bytesCopied}`)
  t.ok(segmentFiles(dir).length < filesBefore + 5, 'files went away')
  t.ok(e.status().diskBytes < before.diskBytes, 'disk use went down')
  const check = async (eng: StorageEngine, label: string): Promise<void> => {
    for (let i = 0n; i < 200n; i++) {
      if (!(await eng.read(1n, i)).payload.equals(payloadFor(1n, i, 200))) t.fail(`${label}: 1/${i} differs`)
      if (!(await eng.read(19n, i)).payload.equals(payloadFor(19n, i, 400))) t.fail(`${label}: 19/${i} differs`)
    }
    for (let i = 0n; i < written; i++) if (!(await eng.read(2n, i)).payload.equals(payloadFor(2n, i, 300))) t.fail(`${label}: 2/${i} differs`)
    t.equal(eng.ledger(1n).fenced, true, `${label}: the fence survived compaction`)
    await t.rejects(eng.read(10n, 0n), {code: ErrorCode.NO_SUCH_LEDGER}, `${label}: deleted stays deleted`)
  }
  await check(e, 'live')
  await e.close()
  const r1 = await StorageEngine.open({dir, ...opts, writeCacheBytes: 0})
  await check(r1, 'restart with checkpoint')
  t.same(r1.problems, [])
  await r1.close()
  unlinkSync(join(dir, 'index.ckpt'))
  const r2 = await StorageEngine.open({dir, ...opts, writeCacheBytes: 0})
  await check(r2, 'full replay without checkpoint')
  t.same(r2.problems, [])
  await r2.close()
})
