// Disk full on a real small filesystem (a tmpfs mounted for the test; CI runs as root): adds fail with
// READ_ONLY, reads keep working, nothing acknowledged is lost, and adds resume once space returns.
import t from 'tap'
import {execFileSync} from 'node:child_process'
import {subscribe, unsubscribe} from 'node:diagnostics_channel'
import {mkdirSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {StorageEngine} from '../../src/engine/engine.js'
import {ErrorCode} from '../../src/errors.js'
import {entry, payloadFor, tempDir} from '../helpers/entries.js'

function mountTmpfs(t: {teardown: (fn: () => void) => void}, sizeKiB: number): string {
  const mnt = tempDir(t, 'logctl-enospc-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', mnt])
  t.teardown(() => {
    execFileSync('umount', ['-l', mnt])
  })
  return mnt
}

// The third case: batches of 160 KB are appended past the zero-filled runway (APPEND_BATCH_BYTES), so a full
// disk fails an append midway, which must be cut back as when preallocation is off.
for (const [preallocBytes, perBatch] of [[64 * 1024, 8], [0, 8], [64 * 1024, 160]] as const) {
  t.test(`ENOSPC turns the engine read-only, then writable again (preallocBytes ${preallocBytes}, ${perBatch} KB batches)`, async t => {
    const mnt = mountTmpfs(t, 1536)
    const dir = join(mnt, 'data')
    mkdirSync(dir)
    const filler = join(mnt, 'filler')
    writeFileSync(filler, Buffer.alloc(512 * 1024, 1))
    const e = await StorageEngine.open({dir, preallocBytes, maxSegmentBytes: perBatch > 8 ? 1024 * 1024 : 256 * 1024, maxBatchBytes: perBatch > 8 ? 256 * 1024 : 64 * 1024, compactIntervalMs: 0, readOnlyProbeMs: 20, minFreeBytes: 256 * 1024, checkpointBytes: 1 << 30})
    t.teardown(() => e.close())
    const acked: bigint[] = []
    let firstError: {code?: string} | undefined
    // A read of an entry whose add is on its way to the journal waits for it (engine `settled`): it must
    // answer with the entry when the add succeeds and without it when the add fails, never hang.
    let readsOk = 0
    let readsWrong = 0
    for (let i = 0n; i < 3000n && !firstError; i += BigInt(perBatch)) {
      const batch = Array.from({length: perBatch}, (_, k) => i + BigInt(k))
      const adds = batch.map(id => e.add(entry(1n, id, {size: 1000})))
      const last = batch.at(-1)!
      // After the turn's adds reach addBatch (one microtask later), so the read finds them in flight.
      const read = new Promise<{ok: boolean; code?: string | undefined}>(resolve => queueMicrotask(() => {
        e.read(1n, last).then(() => resolve({ok: true}), (err: {code?: string}) => resolve({ok: false, code: err.code}))
      }))
      const results = await Promise.allSettled(adds)
      results.forEach((r, k) => {
        if (r.status === 'fulfilled') acked.push(batch[k]!)
        else firstError ??= r.reason as {code?: string}
      })
      const got = await read
      const added = results.at(-1)!.status === 'fulfilled'
      if (added ? got.ok : !got.ok && got.code === ErrorCode.NO_SUCH_ENTRY) readsOk++
      else readsWrong++
    }
    t.equal(readsWrong, 0, `reads issued while their entry's add was in flight answered its outcome (${readsOk} reads)`)
    t.equal(firstError?.code, ErrorCode.READ_ONLY, 'the disk filled up and adds failed with READ_ONLY')
    t.ok(e.readOnly, 'the engine says it is read-only')
    t.ok(acked.length > 100, `${acked.length} entries were acknowledged first`)
    await t.rejects(e.add(entry(2n, 0n)), {code: ErrorCode.READ_ONLY}, 'further adds fail fast')
    for (const id of acked) {
      if (!(await e.read(1n, id)).payload.equals(payloadFor(1n, id, 1000))) t.fail(`entry ${id} differs`)
    }
    t.pass('every acknowledged entry still reads back while read-only')

    const writable = new Promise<void>(resolve => {
      const onMsg = (m: unknown): void => {
        if ((m as {readOnly?: boolean}).readOnly === false) {
          unsubscribe('logctl:engine:read-only', onMsg)
          resolve()
        }
      }
      subscribe('logctl:engine:read-only', onMsg)
    })
    unlinkSync(filler)
    await writable
    t.notOk(e.readOnly, 'writable again once space returned')
    const next = BigInt(acked.length) + 10_000n
    await e.add(entry(1n, next, {size: 1000}))
    await e.close()
    const again = await StorageEngine.open({dir, preallocBytes, compactIntervalMs: 0})
    for (const id of [...acked, next]) {
      if (!(await again.read(1n, id)).payload.equals(payloadFor(1n, id, 1000))) t.fail(`entry ${id} differs after restart`)
    }
    t.same(again.problems.filter(p => p.kind === 'corruption'), [], 'no corruption after the full disk')
    await again.close()
  })
}
