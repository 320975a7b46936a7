// Checkpoints are written from the index's own arrays over several turns (no copy on the main thread):
// the index keeps a snapshot's arrays unchanged by copying on write, and what is read back is the state of
// the snapshot's moment, whatever changed while it was being written.
import t, {type Test} from 'tap'
import {readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {CHECKPOINT_FILE, PIECE_DIR, encodeCheckpoint, pieceFileName, readCheckpoint, writeCheckpoint} from '../../src/engine/checkpoint.js'
import {ErrorCode} from '../../src/errors.js'
import {INDEX_COLUMNS, LedgerIndex, type IndexColumns} from '../../src/engine/ledger-index.js'
import {EngineState} from '../../src/engine/state.js'
import {tempDir} from '../helpers/entries.js'

/** Each column whole, chunk after chunk. */
const copyOf = (l: LedgerIndex): number[][] => {
  const chunks = l.columns()
  return INDEX_COLUMNS.map(k => chunks.flatMap(c => [...c[k]]))
}

t.test('a snapshot of a ledger index stays as it was while the index changes (copy on write)', async t => {
  const l = new LedgerIndex()
  for (let i = 0; i < 1000; i += 2) l.put(i, 1, i * 10, 10, i)
  const before = copyOf(l)
  const snap = l.pieces().map(p => p.columns)
  const arrays = snap[0]!.ids.buffer
  l.put(1001, 7, 7, 7, 7) // appended past the snapshot: no copy needed
  t.equal(l.columns()[0]!.ids.buffer, arrays, 'an append writes past the snapshot, in the same arrays')
  l.put(4, 9, 9, 9, 9) // replaces a location inside it
  l.put(5, 9, 9, 9, 9) // inserts before its end
  t.same(INDEX_COLUMNS.map(k => [...snap[0]![k]]), before, 'the snapshot still shows its moment')
  t.not(l.columns()[0]!.ids.buffer, arrays, 'the index moved to arrays of its own')
  t.same(l.get(4), {segmentId: 9, offset: 9, length: 9, digest: 9})
  t.same(l.get(5), {segmentId: 9, offset: 9, length: 9, digest: 9})
  t.same(l.get(1001), {segmentId: 7, offset: 7, length: 7, digest: 7})
  t.equal(l.size, 502)
  l.release()
  const now = l.columns()[0]!.ids.buffer
  l.put(4, 8, 8, 8, 8)
  t.equal(l.columns()[0]!.ids.buffer, now, 'released: changes go in place again')
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
  const writing = writeCheckpoint(dir, enc, {directIo: true, pace: () => 0})
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

t.test('a chunked index matches a model through appends, inserts, replacements, splits and snapshots', async t => {
  // Chunks of 8 entries so that splits and chunk boundaries happen all the time.
  const rand = (() => { let x = 12345; return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) })()
  const l = new LedgerIndex(8)
  const model = new Map<number, number[]>()
  let next = 0
  let snap: {views: IndexColumns[]; expect: number[][]} | undefined
  let failures = 0
  for (let step = 0; step < 20_000 && failures === 0; step++) {
    const r = rand()
    let id: number
    if (r < 0.6) id = next++ * 2 // appends (even ids, leaving gaps)
    else if (r < 0.85) id = Math.floor(rand() * next) * 2 + 1 // inserts into the gaps
    else id = Math.floor(rand() * next) * 2 // replacements (or an append of an id not yet used)
    const loc = [step % 7, step, (step % 100) + 1, step ^ 0x5555]
    const prev = l.put(id, loc[0]!, loc[1]!, loc[2]!, loc[3]!)
    const had = model.get(id)
    if ((prev === undefined) !== (had === undefined)) failures++
    model.set(id, loc)
    if (step % 997 === 0) {
      if (snap) {
        // What the snapshot showed when taken is what it shows now, whatever changed since.
        const now = INDEX_COLUMNS.map(k => snap!.views.flatMap(c => [...c[k]]))
        if (JSON.stringify(now) !== JSON.stringify(snap.expect)) failures++
        l.release()
      }
      const views = l.pieces().map(p => p.columns)
      snap = {views, expect: INDEX_COLUMNS.map(k => views.flatMap(c => [...c[k]]))}
    }
  }
  t.equal(failures, 0, 'put() said "replaced" exactly for ids already held, and snapshots never changed')
  const ids = [...model.keys()].sort((a, b) => a - b)
  t.equal(l.size, ids.length)
  t.same(copyOf(l)[0], ids, 'ids ascending, across chunks')
  t.ok(ids.every(id => { const m = model.get(id)!; const g = l.get(id); return g !== undefined && g.segmentId === m[0] && g.offset === m[1] && g.length === m[2] && g.digest === m[3] }), 'every location as last put')
  t.equal(l.firstEntryId, ids[0])
  t.equal(l.lastEntryId, ids.at(-1))
  t.same(l.idsInRange(ids[100]!, ids[140]!, 1000), ids.slice(100, 141), 'a range across chunks')
  t.same(l.idsInRange(ids[100]! - 0.5, ids[300]!, 25), ids.slice(100, 125), 'from between ids, cut by the limit')
  t.ok(l.columns().every(c => c.ids.length > 0 && c.ids.length <= 8), 'chunks hold 1..8 entries')
  const back = LedgerIndex.fromColumns({ids: new Float64Array(copyOf(l)[0]!), seg: new Uint32Array(copyOf(l)[1]!), off: new Uint32Array(copyOf(l)[2]!), len: new Uint32Array(copyOf(l)[3]!), dig: new Uint32Array(copyOf(l)[4]!)}, 8)
  t.same(copyOf(back), copyOf(l), 'fromColumns rebuilds the same index')
})

t.test('a checkpoint of several MiB and an odd size is the same files written directly or through the cache, paced step by step', async t => {
  const files: Buffer[][] = []
  let model: number[][] | undefined
  for (const directIo of [true, false]) {
    const state = new EngineState()
    const l = state.ledgerFor(5n)
    // 150,001 entries: 3.6 MB of columns in three chunks (64 Ki, 64 Ki, 18,929 entries), none a whole number
    // of 1 MiB steps or 4 KiB blocks.
    for (let i = 0; i <= 150_000; i++) l.put(i, 2, 64 + i * 1080, 1080, (i * 2654435761) >>> 0)
    l.lac = 150_000
    model = copyOf(l)
    const dir = tempDir(t)
    let asked = 0
    const enc = encodeCheckpoint(state, {segmentId: 2, offset: 8192, lastSeq: 3n})
    await writeCheckpoint(dir, enc, {directIo, pace: () => { asked++; return 0 }})
    const file = join(dir, CHECKPOINT_FILE)
    const sizes = [65536, 65536, 18929].map(n => n * 24)
    const pieces = [1, 2, 3].map(k => join(dir, PIECE_DIR, pieceFileName(5n, k)))
    t.equal(statSync(file).size, enc.bytes, `directIo ${directIo}: the manifest is exactly its size`)
    t.same(pieces.map(f => statSync(f).size), sizes, `directIo ${directIo}: a piece file per chunk, exactly its columns`)
    t.equal(enc.written, enc.bytes + 150_001 * 24)
    t.equal(asked, Math.ceil(enc.bytes / (1024 * 1024)) + sizes.reduce((n, s) => n + Math.ceil(s / (1024 * 1024)), 0), `directIo ${directIo}: the pace is asked once per 1 MiB step of each file`)
    const back = new EngineState()
    t.same(readCheckpoint(dir, back), {segmentId: 2, offset: 8192, lastSeq: 3n})
    t.same(copyOf(back.ledgers.get(5n)!), model, `directIo ${directIo}: every entry read back`)
    files.push([file, ...pieces].map(f => readFileSync(f)))
  }
  t.ok(files[0]!.every((b, k) => b.equals(files[1]![k]!)), 'both ways give the same bytes')
})

t.test('a checkpoint writes only the chunks that changed, and removes the pieces no manifest names', async t => {
  const dir = tempDir(t)
  const state = new EngineState()
  const fill = (id: bigint, from: number, to: number): void => {
    const l = state.ledgerFor(id)
    for (let i = from; i < to; i++) l.put(i, 1, 64 + i * 1080, 1080, i * 31)
    l.lac = to - 1
  }
  fill(1n, 0, 10_000) // big: pieces (one chunk each)
  fill(2n, 0, 10_000)
  fill(3n, 0, 70_000) // two chunks: 64 Ki entries, then 4,464
  fill(4n, 0, 50) // small: inline in the manifest
  const write = async (): Promise<ReturnType<typeof encodeCheckpoint>> => {
    const enc = encodeCheckpoint(state, {segmentId: 1, offset: 4096, lastSeq: 9n})
    await writeCheckpoint(dir, enc, {directIo: true, pace: () => 0})
    return enc
  }
  const pieces = (): string[] => readdirSync(join(dir, PIECE_DIR)).sort()
  const readBack = (): EngineState => {
    const back = new EngineState()
    readCheckpoint(dir, back)
    return back
  }
  const same = (t: Test, what: string): void => {
    const back = readBack()
    t.same([...back.ledgers].map(([id, l]) => [id, l.fenced, l.lac, copyOf(l)]), [...state.ledgers].map(([id, l]) => [id, l.fenced, l.lac, copyOf(l)]), what)
  }
  const names = (...p: Array<[bigint, number]>): string[] => p.map(([id, k]) => pieceFileName(id, k)).sort()

  const first = await write()
  t.same(first.files.map(f => f.name).sort(), names([1n, 1], [2n, 2], [3n, 3], [3n, 4]), 'the first checkpoint writes a piece per chunk of each big ledger')
  t.same(pieces(), names([1n, 1], [2n, 2], [3n, 3], [3n, 4]))
  same(t, 'read back whole')

  fill(2n, 10_000, 10_100) // ledger 2 grows; ledger 3 grows in its last chunk only; ledger 1 does not
  fill(3n, 70_000, 70_010)
  fill(4n, 50, 60) // the small one changes too
  state.ledgerFor(1n).fenced = true // a header change only: the piece still holds the columns
  const second = await write()
  t.same(second.files.map(f => f.name).sort(), names([2n, 5], [3n, 6]), 'the second writes only the changed chunks')
  t.ok(second.written < (10_100 + 4_474) * 24 + 64 * 1024, `${second.written} bytes in all, not the whole index again`)
  t.same(pieces(), names([1n, 1], [2n, 5], [3n, 3], [3n, 6]), 'the pieces they replaced are gone')
  same(t, 'read back whole, old pieces and new')

  const third = await write() // nothing changed: nothing but the manifest
  t.same(third.files, [])
  t.same(pieces(), names([1n, 1], [2n, 5], [3n, 3], [3n, 6]))

  state.ledgerFor(3n).put(5, 9, 9, 9, 9) // a location in the first chunk replaced (as compaction does)
  state.dropLedger(1n)
  const fourth = await write()
  t.same(fourth.files.map(f => f.name), [pieceFileName(3n, 7)], 'a replaced location rewrites its chunk')
  t.same(pieces(), names([2n, 5], [3n, 6], [3n, 7]), 'a dropped ledger\'s piece is removed with it')
  same(t, 'read back after a replacement and a drop')

  // A restart reads the pieces back and remembers them: its first checkpoint rewrites nothing unchanged,
  // and numbers new pieces above every piece the manifest names.
  const restarted = readBack()
  t.equal(restarted.nextPiece, 8)
  const enc = encodeCheckpoint(restarted, {segmentId: 1, offset: 4096, lastSeq: 30n})
  enc.release()
  t.same(enc.files, [], 'after a restart, unchanged chunks are only named')
  restarted.ledgerFor(3n).put(70_010, 1, 1, 1, 1)
  const after = encodeCheckpoint(restarted, {segmentId: 1, offset: 4096, lastSeq: 31n})
  after.release()
  t.same(after.files.map(f => f.name), [pieceFileName(3n, 8)], 'an append after the restart rewrites the last chunk only, as a new piece')
})

t.test('a checkpoint whose piece is missing, cut short or damaged is CORRUPT as a whole', async t => {
  for (const damage of ['missing', 'short', 'flipped'] as const) {
    const dir = tempDir(t)
    const state = new EngineState()
    const l = state.ledgerFor(7n)
    for (let i = 0; i < 5000; i++) l.put(i, 1, 64 + i * 100, 100, i)
    await writeCheckpoint(dir, encodeCheckpoint(state, {segmentId: 1, offset: 4096, lastSeq: 5n}), {directIo: false, pace: () => 0})
    const piece = join(dir, PIECE_DIR, pieceFileName(7n, 1))
    if (damage === 'missing') unlinkSync(piece)
    else if (damage === 'short') truncateSync(piece, 5000 * 24 - 4)
    else {
      const b = readFileSync(piece)
      b[4321] = b[4321]! ^ 0x10
      writeFileSync(piece, b)
    }
    t.throws(() => readCheckpoint(dir, new EngineState()), {code: ErrorCode.CORRUPT, message: new RegExp(`index piece ${pieceFileName(7n, 1)}`)}, `a ${damage} piece`)
  }
})
