// Data written by on-disk format version 1 (test/fixtures/format-v1, committed) must keep opening.
import t from 'tap'
import {cpSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {StorageEngine} from '../../src/engine/engine.js'
import {ErrorCode} from '../../src/errors.js'
import {tempDir} from '../helpers/entries.js'

const fixture = fileURLToPath(new URL('../../../test/fixtures/format-v1', import.meta.url))

for (const withCheckpoint of [true, false]) {
  t.test(`format v1 fixture opens and reads back (${withCheckpoint ? 'from its checkpoint' : 'by full replay'})`, async t => {
    const dir = join(tempDir(t), 'data')
    cpSync(fixture, dir, {recursive: true})
    if (!withCheckpoint) unlinkSync(join(dir, 'index.ckpt'))
    const e = await StorageEngine.open({dir, compactIntervalMs: 0})
    t.teardown(() => e.close())
    t.same(e.problems, [])
    for (let i = 0n; i < 20n; i++) {
      t.equal((await e.read(1n, i)).payload.toString(), `fixture entry ${i} ` + 'abc'.repeat(Number(i)))
    }
    t.equal((await e.read(2n, 0n)).payload.toString(), '{"msg":"compressible log line"}\n'.repeat(100))
    t.equal(e.ledger(1n).fenced, true)
    t.equal(e.ledger(1n).lac, 18n)
    await t.rejects(e.read(3n, 0n), {code: ErrorCode.NO_SUCH_LEDGER})
  })
}
