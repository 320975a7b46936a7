// Journal batches written with O_DIRECT (src/engine/journal-worker.ts): whole 4 KiB blocks, the block's
// earlier bytes (the previous batch's tail) written again unchanged, zeros after the batch. What would break:
// a wrong tail (earlier records in the block overwritten), a wrong offset, padding left in the file in
// append mode, or a file system without O_DIRECT failing instead of writing through the cache.
import t, {type Test} from 'tap'
import {existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {StorageEngine, type EngineOptions} from '../../src/engine/engine.js'
import {recordBytes, SEGMENT_HEADER_BYTES} from '../../src/engine/format.js'
import {entry, payloadFor, tempDir} from '../helpers/entries.js'

const TMPFS_MAGIC = 0x01021994

/** Sizes that put batch starts and ends everywhere in a block (and across several blocks). */
const size = (i: number): number => 1 + ((i * 977) % 9000)

async function writeAndCheck(t: Test, dir: string, opts: Partial<EngineOptions>): Promise<StorageEngine> {
  let e = await StorageEngine.open({dir, ...opts})
  // One add at a time: every batch is one record and starts where the last one ended, mid-block.
  for (let i = 0; i < 60; i++) await e.add(entry(3n, BigInt(i), {size: size(i)}))
  // Then bursts: batches of many records.
  for (let round = 0; round < 4; round++) {
    await Promise.all(Array.from({length: 50}, (_, k) => {
      const i = 60 + round * 50 + k
      return e.add(entry(3n, BigInt(i), {size: size(i)}))
    }))
  }
  await e.close()
  // Reopened: the next batch starts in a block whose earlier bytes this worker has not written.
  e = await StorageEngine.open({dir, ...opts})
  for (let i = 260; i < 300; i++) await e.add(entry(3n, BigInt(i), {size: size(i)}))
  await e.close()
  e = await StorageEngine.open({dir, ...opts, writeCacheBytes: 0})
  for (let i = 0; i < 300; i++) {
    const got = await e.read(3n, BigInt(i))
    if (!got.payload.equals(payloadFor(3n, BigInt(i), size(i)))) {
      t.fail(`entry ${i} differs after restarts`)
      return e
    }
  }
  t.pass('300 entries of 1-9000 bytes read back byte for byte after two restarts')
  t.same(e.problems, [], 'no storage problem found at start')
  return e
}

const onTmpfs = (dir: string): boolean => statfsSync(dir).type === TMPFS_MAGIC

t.test('batches are written with O_DIRECT, in whole blocks, without damaging earlier records', async t => {
  const dir = tempDir(t)
  if (onTmpfs(dir)) {
    t.pass('skipped: the temp directory is on tmpfs')
    return
  }
  const e = await writeAndCheck(t, dir, {})
  t.teardown(() => e.close())
  t.equal(e.status().journal.directIo, true, 'status reports direct I/O')
})

t.test('plain appends (no preallocation) leave the file ending where the records end', async t => {
  const dir = tempDir(t)
  if (onTmpfs(dir)) {
    t.pass('skipped: the temp directory is on tmpfs')
    return
  }
  const e = await StorageEngine.open({dir, preallocBytes: 0})
  let bytes = SEGMENT_HEADER_BYTES
  for (let i = 0; i < 20; i++) {
    await e.add(entry(4n, BigInt(i), {size: size(i)}))
    bytes += recordBytes(size(i))
  }
  t.equal(e.status().journal.directIo, true)
  await e.close()
  const segs = readdirSync(join(dir, 'segments')).sort()
  t.equal(statSync(join(dir, 'segments', segs.at(-1)!)).size, bytes, 'file size = header + records, no block padding')
})

t.test('the zero-filled runway (preallocation) is written directly too: zeros up to the end, data intact', async t => {
  const dir = tempDir(t)
  if (onTmpfs(dir)) {
    t.pass('skipped: the temp directory is on tmpfs')
    return
  }
  // 64 KiB + 512: chunk ends that are not block-aligned (their last part is written through the cache), and a
  // segment's first chunk starts mid-block (after the header), so every branch of the zero-fill runs.
  const preallocBytes = 64 * 1024 + 512
  const e = await writeAndCheck(t, dir, {preallocBytes, maxSegmentBytes: 512 * 1024})
  await e.close()
  const segs = readdirSync(join(dir, 'segments')).sort()
  t.ok(segs.length >= 3, `several segments (${segs.length}): each starts its runway mid-block`)
  for (const name of segs) {
    const size = statSync(join(dir, 'segments', name)).size
    t.equal((size - SEGMENT_HEADER_BYTES) % preallocBytes, 0, `${name}: size is the header plus whole chunks`)
  }
  // A runway that is not zeros reads as records (or torn ones) at start: writeAndCheck's clean start and
  // byte-for-byte reads are what fail then.
})

t.test('directIo false writes through the page cache, same data', async t => {
  const dir = tempDir(t)
  const e = await writeAndCheck(t, dir, {directIo: false})
  t.teardown(() => e.close())
  t.equal(e.status().journal.directIo, false)
})

t.test('tmpfs (O_DIRECT since Linux 6.6, refused before: then written through the cache) keeps the data too', async t => {
  if (!existsSync('/dev/shm') || !onTmpfs('/dev/shm')) {
    t.pass('skipped: no tmpfs at /dev/shm on this machine')
    return
  }
  const dir = mkdtempSync('/dev/shm/logctl-')
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const e = await writeAndCheck(t, dir, {})
  t.teardown(() => e.close())
  t.comment(`direct I/O on tmpfs here: ${e.status().journal.directIo}`)
})

t.test('bad directIo option is BAD_INPUT', async t => {
  const dir = tempDir(t)
  await t.rejects(StorageEngine.open({dir, directIo: 'yes' as unknown as boolean}), {code: 'BAD_INPUT'})
})
