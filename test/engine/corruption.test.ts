// A table of corruptions applied to real segment files, each with its expected outcome (docs/FORMAT.md).
import t from 'tap'
import {appendFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {StorageEngine} from '../../src/engine/engine.js'
import {RECORD_HEADER_BYTES, RecordType, SEGMENT_HEADER_BYTES} from '../../src/engine/format.js'
import {scanSegment} from '../../src/engine/scan.js'
import {verifyDataDir} from '../../src/engine/inspect.js'
import {PIECE_DIR} from '../../src/engine/checkpoint.js'
import {ErrorCode} from '../../src/errors.js'
import {entry, payloadFor, tempDir} from '../helpers/entries.js'

// Plain appends (no preallocation) so that the file ends where the data ends; 300-byte payloads make
// every record 360 bytes, so record k of a segment starts at 64 + 360k.
const opts = {maxSegmentBytes: 64 * 1024, preallocBytes: 0, compactIntervalMs: 0, writeCacheBytes: 0}
const REC = 360
const N = 400n

async function populate(dir: string): Promise<string[]> {
  const e = await StorageEngine.open({dir, ...opts})
  for (let i = 0n; i < N; i += 20n) await Promise.all(Array.from({length: 20}, (_, k) => e.add(entry(1n, i + BigInt(k), {size: 300}))))
  await e.add(entry(3n, 0n, {size: 300})) // a last batch of its own, after the 20-entry rounds
  await e.close()
  return readdirSync(join(dir, 'segments')).sort().map(f => join(dir, 'segments', f))
}

/** Entry ids of the records in a segment (read before damaging it). */
function entriesIn(file: string): bigint[] {
  return [...scanSegment(file)].flatMap(i => (i.kind === 'record' && i.header.type === RecordType.ENTRY ? [i.header.entryId] : []))
}

/** The entry id of the record at `offset` (read before damaging it). */
function entryAt(file: string, offset: number): bigint {
  return readFileSync(file).readBigUInt64LE(offset + 24)
}

function flip(file: string, offset: number): void {
  const b = readFileSync(file)
  b[offset] = b[offset]! ^ 0xff
  writeFileSync(file, b)
}

async function readAll(e: StorageEngine): Promise<{ok: bigint[]; failed: Map<bigint, string>}> {
  const ok: bigint[] = []
  const failed = new Map<bigint, string>()
  for (let i = 0n; i < N; i++) {
    try {
      const got = await e.read(1n, i)
      if (!got.payload.equals(payloadFor(1n, i, 300))) failed.set(i, 'WRONG BYTES')
      else ok.push(i)
    } catch (err) {
      failed.set(i, (err as {code: string}).code)
    }
  }
  return {ok, failed}
}

interface Case {
  name: string
  /** Damage the files; returns the entry ids that may be lost (all others must read back intact). */
  damage: (segs: string[], dir: string) => bigint[]
  expect: {problem?: 'torn-tail' | 'corruption' | 'bad-checkpoint'; readErrors?: string}
}

const cases: Case[] = [
  {
    name: 'truncated tail: the last record is cut short',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt')) // as after a crash: the last checkpoint is older than the tail
      const last = segs.at(-1)!
      truncateSync(last, statSync(last).size - 100)
      return [N - 1n]
    },
    expect: {problem: 'torn-tail'},
  },
  {
    // What broke: data cut from below the checkpoint's position (acknowledged once) was treated as a torn
    // tail after the checkpoint was distrusted.
    name: 'the last segment cut short below the checkpoint position is corruption, not a torn tail',
    damage: segs => {
      const last = segs.at(-1)!
      const ids = entriesIn(last)
      truncateSync(last, statSync(last).size - 1000)
      return ids
    },
    expect: {problem: 'corruption'},
  },
  {
    name: 'junk appended after the last record',
    damage: segs => {
      appendFileSync(segs.at(-1)!, Buffer.from('this is not a record, just junk written by a crash'.repeat(20)))
      return []
    },
    expect: {problem: 'torn-tail'},
  },
  {
    name: 'a flipped byte in a payload in the middle of a sealed segment (detected on read)',
    damage: segs => {
      const at = SEGMENT_HEADER_BYTES + 5 * REC
      const id = entryAt(segs[1]!, at)
      flip(segs[1]!, at + RECORD_HEADER_BYTES + 10)
      return [id]
    },
    expect: {readErrors: ErrorCode.BAD_CHECKSUM},
  },
  {
    name: 'a flipped byte in a payload, replayed without a checkpoint',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt'))
      const at = SEGMENT_HEADER_BYTES + 5 * REC
      const id = entryAt(segs[1]!, at)
      flip(segs[1]!, at + RECORD_HEADER_BYTES + 10)
      return [id]
    },
    expect: {problem: 'corruption', readErrors: ErrorCode.NO_SUCH_ENTRY},
  },
  {
    name: 'a flipped byte in a record header, replayed without a checkpoint',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt'))
      flip(segs[0]!, SEGMENT_HEADER_BYTES + 3 * REC + 20) // inside the ledger id
      return [3n]
    },
    expect: {problem: 'corruption', readErrors: ErrorCode.NO_SUCH_ENTRY},
  },
  {
    name: 'a flipped byte in a record header in the middle of the active segment (not its last batch)',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt'))
      const last = segs.at(-1)!
      const id = entryAt(last, SEGMENT_HEADER_BYTES + 2 * REC)
      flip(last, SEGMENT_HEADER_BYTES + 2 * REC + 8) // the record type
      return [id]
    },
    expect: {problem: 'corruption', readErrors: ErrorCode.NO_SUCH_ENTRY},
  },
  {
    // What broke: a damaged record inside the next-to-last batch, followed by the rest of that batch and by
    // the last batch, was taken for a torn write and zeroed, although that batch had been acknowledged.
    name: 'a flipped byte inside the next-to-last batch of the active segment is corruption, not a torn tail',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt'))
      const last = segs.at(-1)!
      const recs = [...scanSegment(last)].flatMap(i => (i.kind === 'record' ? [i] : []))
      const lastSeq = recs.at(-1)!.header.batchSeq
      const batch = recs.filter(r => r.header.batchSeq === lastSeq - 1n)
      if (batch.length < 3) throw new Error(`the next-to-last batch has only ${batch.length} records`)
      const victim = batch[1]!
      flip(last, victim.offset + 8)
      return [victim.header.entryId]
    },
    expect: {problem: 'corruption', readErrors: ErrorCode.NO_SUCH_ENTRY},
  },
  {
    // What broke: a SIGKILL between creating the next segment file and writing its header left an empty
    // newest segment, which restart reported as corruption (the crash test caught it).
    name: 'an interrupted segment creation (an empty newest file) is a torn tail, and the segment is made again',
    damage: segs => {
      const last = segs.at(-1)!
      const next = last.replace(/(\d{20})\.log$/, (_m, n: string) => `${String(Number(n) + 1).padStart(20, '0')}.log`)
      writeFileSync(next, Buffer.alloc(0))
      return []
    },
    expect: {problem: 'torn-tail'},
  },
  {
    name: 'a corrupt checkpoint is ignored and the journal is replayed in full',
    damage: (_segs, dir) => {
      flip(join(dir, 'index.ckpt'), 30)
      return []
    },
    expect: {problem: 'bad-checkpoint'},
  },
  {
    name: 'a damaged segment header: that file is set aside, the rest keeps working',
    damage: (segs, dir) => {
      unlinkSync(join(dir, 'index.ckpt'))
      const ids = entriesIn(segs[0]!)
      flip(segs[0]!, 2)
      return ids
    },
    expect: {problem: 'corruption', readErrors: ErrorCode.NO_SUCH_ENTRY},
  },
]

for (const c of cases) {
  t.test(c.name, async t => {
    const dir = tempDir(t)
    const segs = await populate(dir)
    t.ok(segs.length >= 3, 'several segments')
    const mayLose = new Set(c.damage(segs, dir))
    const e = await StorageEngine.open({dir, ...opts})
    t.teardown(() => e.close())
    if (c.expect.problem) {
      const p = e.problems.find(p => p.kind === c.expect.problem)
      t.ok(p, `reports ${c.expect.problem}`)
      t.match(p?.file, /(\.log|index\.ckpt)$/, 'names the file')
      t.type(p?.offset, 'number', 'and the offset')
      if (p?.kind === 'torn-tail') t.ok(p.savedAs && existsSync(p.savedAs), 'the cut bytes were kept aside')
    } else {
      t.same(e.problems, [], 'nothing found at start (the checkpoint covers the damaged region)')
    }
    const {ok, failed} = await readAll(e)
    for (const [id, code] of failed) {
      t.ok(mayLose.has(id), `entry ${id} failed with ${code} and was in the damaged region`)
      if (c.expect.readErrors) t.equal(code, c.expect.readErrors, `entry ${id}: ${c.expect.readErrors}`)
      t.not(code, 'WRONG BYTES', 'never different bytes')
    }
    t.equal(ok.length + failed.size, Number(N))
    // The engine keeps working: new adds land and survive another restart with nothing new reported.
    await e.add(entry(2n, 0n))
    await e.close()
    const again = await StorageEngine.open({dir, ...opts})
    t.same((await again.read(2n, 0n)).payload, payloadFor(2n, 0n))
    t.notOk(again.problems.some(p => p.kind === 'torn-tail'), 'a torn tail is cut once, not again')
    await again.close()
  })
}

t.test('a data directory of another format version is refused', async t => {
  const dir = tempDir(t)
  await populate(dir)
  writeFileSync(join(dir, 'FORMAT'), 'logctl-data 99\n')
  await t.rejects(StorageEngine.open({dir, ...opts}), {code: ErrorCode.BAD_FORMAT_VERSION})
})

t.test('storage verify agrees: an interrupted segment creation is a torn tail, not corruption', async t => {
  const dir = tempDir(t)
  const segs = await populate(dir)
  const next = segs.at(-1)!.replace(/(\d{20})\.log$/, (_m, n: string) => `${String(Number(n) + 1).padStart(20, '0')}.log`)
  writeFileSync(next, Buffer.alloc(0))
  const v = verifyDataDir(dir)
  t.same(v.problems.map(p => p.kind), ['torn-tail'])
  t.equal(v.ok, true)
})

t.test('a damaged index piece (a big ledger\'s columns, kept apart from index.ckpt) makes the checkpoint ignored, and nothing is lost', async t => {
  const dir = tempDir(t)
  const big = {...opts, maxSegmentBytes: 4 * 1024 * 1024}
  const e = await StorageEngine.open({dir, ...big})
  const n = 3000n // 72,000 bytes of columns: a piece file of its own
  for (let i = 0n; i < n; i += 100n) await Promise.all(Array.from({length: 100}, (_, k) => e.add(entry(1n, i + BigInt(k), {size: 100}))))
  await e.close() // a checkpoint at close
  const pieces = readdirSync(join(dir, PIECE_DIR))
  t.equal(pieces.length, 1, 'one piece file')
  flip(join(dir, PIECE_DIR, pieces[0]!), 100)
  t.match(verifyDataDir(dir).problems, [{kind: 'bad-checkpoint', reason: /index piece .* fails its checksum/}], 'storage verify reports it')
  const again = await StorageEngine.open({dir, ...big})
  t.teardown(() => again.close())
  t.match(again.problems, [{kind: 'bad-checkpoint', reason: /index piece .* fails its checksum/}], 'the restart reports it and replays the journal')
  let same = 0
  for (let i = 0n; i < n; i++) if ((await again.read(1n, i)).payload.equals(payloadFor(1n, i, 100))) same++
  t.equal(same, Number(n), 'every entry reads back')
})
