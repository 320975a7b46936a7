// `logctl storage verify|dump` and the CLI shell, run as a user runs them: the built bin/run.js in a
// subprocess, on data directories written by a real StorageEngine and then damaged on disk.
import t from 'tap'
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {listSegments} from '../../src/engine/replay.js'
import {segmentFileName} from '../../src/engine/format.js'
import {scanSegment} from '../../src/engine/scan.js'
import {StorageEngine} from '../../src/engine/engine.js'
import {appendBytes, entry, fileSize, flipByte, logctl, ROOT, SMALL, tempDir, withEngine, writeEntries} from './helpers.js'

interface Problem {
  kind: string
  file: string
  offset: number
  bytes: number
  reason: string
}

interface Summary {
  dir: string
  ok: boolean
  segments: number
  ledgers: number
  deletedLedgers: number
  fencedLedgers: number
  entries: number
  bytes: number
  records: number
  problems: Problem[]
  checkpoint: {present: boolean; valid: boolean}
  lockedBy: number | null
}

interface DumpJson {
  records: Array<{ledgerId: string; entryId: string; type: string; size: number; stored: number; compressed: boolean; recovery: boolean; compacted: boolean; lac: string; batch: string; segment: string; offset: number}>
  skipped: Array<{segment: string; offset: number; bytes: number; reason: string}>
}

interface ErrorJson {
  error: {code: string; message: string; detail: Record<string, unknown>}
}

// What is written: ledgers 1-3 with 60 x 1000-byte entries (one record per batch and ledger, spread over
// several 64 KiB segments), ledger 4 with 10 compressible 4 KiB entries, then ledger 3 fenced and
// ledger 2 deleted. Replay keeps ledgers 1, 3 and 4.
const EXPECTED = {ledgers: 3, entries: 130, bytes: 2 * 60 * 1000 + 10 * 4096, records: 3 * 60 + 10 + 2, deletedLedgers: 1, fencedLedgers: 1}

async function populate(engine: StorageEngine): Promise<void> {
  await writeEntries(engine, [1n, 2n, 3n], 60, 1000)
  await writeEntries(engine, [4n], 10, 4096, {compress: true})
  await engine.fence(3n)
  await engine.deleteLedger(2n)
}

const root = tempDir(t)
const pristine = join(root, 'pristine')
await withEngine(pristine, populate)
const segs = listSegments(pristine)
const segPath = (dir: string, id: number): string => join(dir, 'segments', segmentFileName(id))
const lastSeg = segs.at(-1)!

/** Every file under dir with its content, to show that verify and dump write nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(dir, {recursive: true, encoding: 'utf8'}).sort()) {
    const path = join(dir, name)
    out[name] = statSync(path).isDirectory() ? 'dir' : createHash('sha256').update(readFileSync(path)).digest('hex')
  }
  return out
}
const pristineFiles = snapshot(pristine)

let copies = 0
/** A fresh copy of the pristine directory to damage. */
function copy(): string {
  const dir = join(root, `copy-${++copies}`)
  cpSync(pristine, dir, {recursive: true})
  return dir
}

function parse<T>(stdout: string): T {
  return JSON.parse(stdout) as T
}

t.test('the pristine directory spans several segments (the damage tests need a sealed one in the middle)', async t => {
  t.ok(segs.length >= 3, `${segs.length} segments`)
})

t.test('verify: a clean directory is OK and its counts match what was written', async t => {
  const r = await logctl('storage', 'verify', pristine, '--json')
  t.equal(r.code, 0, r.stderr)
  const s = parse<Summary>(r.stdout)
  t.match(s, {dir: pristine, ok: true, segments: segs.length, problems: [], checkpoint: {present: true, valid: true}, lockedBy: null, ...EXPECTED})

  const human = await logctl('storage', 'verify', pristine)
  t.equal(human.code, 0)
  t.match(human.stdout, new RegExp(`${segs.length} segments, ${EXPECTED.records} records`))
  t.match(human.stdout, /ledgers\s+3 \(1 fenced, 1 deleted\)/)
  t.match(human.stdout, new RegExp(`entries\\s+${EXPECTED.entries}\\b`))
  t.match(human.stdout, new RegExp(`bytes\\s+${EXPECTED.bytes}\\b`))
  t.match(human.stdout, /^OK$/m)
})

t.test('verify: a flipped payload byte in the middle of a sealed segment is corruption, exit 7, file untouched', async t => {
  const dir = copy()
  const id = segs[1]!
  const file = segPath(dir, id)
  const records = [...scanSegment(file)].filter(i => i.kind === 'record')
  const victim = records[Math.floor(records.length / 2)]!
  flipByte(file, victim.offset + 56 + 100)
  const before = readFileSync(file)

  const r = await logctl('storage', 'verify', dir)
  t.equal(r.code, 7, 'EXIT_CODES[LOG_ERR_CORRUPT]')
  t.match(r.stdout, `${join('segments', segmentFileName(id))}:${victim.offset}  corruption  payload digest mismatch`)
  t.match(r.stderr, /^Error: .*damaged/m)
  t.match(r.stderr, /^Hint: .*\(LOG_ERR_CORRUPT\)$/m)

  const j = await logctl('storage', 'verify', dir, '--json')
  t.equal(j.code, 7, '--json keeps the exit code')
  const s = parse<Summary>(j.stdout)
  t.equal(s.ok, false)
  t.same(s.problems, [{kind: 'corruption', file: join('segments', segmentFileName(id)), offset: victim.offset, bytes: victim.length, reason: 'payload digest mismatch'}])
  t.equal(s.entries, EXPECTED.entries - 1, 'the damaged entry is not counted')

  t.ok(readFileSync(file).equals(before), 'verify did not modify the segment')
  t.notOk(existsSync(join(dir, 'torn')), 'verify did not set anything aside')
})

t.test('verify: junk appended to the last segment is a torn tail, exit 0, file untouched', async t => {
  const dir = copy()
  const file = segPath(dir, lastSeg)
  const size = fileSize(file)
  appendBytes(file, Buffer.from('this is not a record, it is junk'))
  const r = await logctl('storage', 'verify', dir, '--json')
  t.equal(r.code, 0, r.stderr)
  const s = parse<Summary>(r.stdout)
  t.equal(s.ok, true)
  t.match(s.problems, [{kind: 'torn-tail', file: join('segments', segmentFileName(lastSeg)), offset: size}])
  t.equal(s.problems.length, 1)
  t.match(s, EXPECTED)

  const human = await logctl('storage', 'verify', dir)
  t.equal(human.code, 0)
  t.match(human.stdout, `${segmentFileName(lastSeg)}:${size}  torn-tail`)
  t.match(human.stdout, /note: a torn tail .* nothing in it was acknowledged/)
  t.equal(fileSize(file), size + 32, 'verify did not cut the junk')
})

t.test('verify: a torn tail after the checkpoint in a crash image is reported, exit 0', async t => {
  // Copy the directory while an engine has it open: what a SIGKILL leaves behind (adds resolve only
  // once their batch is fdatasync'd, so everything acknowledged is in the copy). The checkpoint covers
  // the first 40 entries; the cut lands in the last of the 10 written after it.
  const live = join(root, 'live')
  const image = join(root, 'crash-image')
  const engine = await StorageEngine.open({...SMALL, dir: live})
  try {
    await writeEntries(engine, [7n], 40, 2000)
    await engine.checkpoint()
    for (let e = 40n; e < 50n; e++) await engine.add(entry(7n, e, 2000))
    cpSync(live, image, {recursive: true})
  } finally {
    await engine.close()
  }
  rmSync(join(image, 'LOCK')) // its owner is dead after a crash
  const file = segPath(image, listSegments(image).at(-1)!)
  const lastRecord = [...scanSegment(file)].filter(i => i.kind === 'record').at(-1)!
  truncateSync(file, fileSize(file) - 300)
  const r = await logctl('storage', 'verify', image, '--json')
  t.equal(r.code, 0, r.stderr)
  const s = parse<Summary>(r.stdout)
  t.match(s, {ok: true, checkpoint: {present: true, valid: true}, ledgers: 1, entries: 49})
  t.match(s.problems, [{kind: 'torn-tail', offset: lastRecord.offset}])
  t.equal(s.problems.length, 1)
})

t.test('verify: a torn tail with no checkpoint at all is reported, exit 0', async t => {
  const dir = copy()
  rmSync(join(dir, 'index.ckpt'))
  const file = segPath(dir, lastSeg)
  const lastRecord = [...scanSegment(file)].filter(i => i.kind === 'record').at(-1)!
  truncateSync(file, fileSize(file) - 20)
  const r = await logctl('storage', 'verify', dir, '--json')
  t.equal(r.code, 0, r.stderr)
  const s = parse<Summary>(r.stdout)
  t.match(s, {ok: true, checkpoint: {present: false, valid: false}, records: EXPECTED.records - 1})
  t.match(s.problems, [{kind: 'torn-tail', offset: lastRecord.offset}])
  t.equal(s.problems.length, 1)
})

// What this guards: a checkpoint records a journal position that only moves once a batch is durable, so
// a cut below it destroyed acknowledged records; calling it a torn tail would hide the loss.
t.test('verify: a cut below the checkpoint position is corruption, exit 7', async t => {
  const dir = copy()
  const file = segPath(dir, lastSeg)
  const records = [...scanSegment(file)].filter(i => i.kind === 'record')
  truncateSync(file, fileSize(file) - 20) // inside the last record
  const r = await logctl('storage', 'verify', dir, '--json')
  t.equal(r.code, 7)
  t.match(parse<Summary>(r.stdout).problems, [{kind: 'corruption', offset: records.at(-1)!.offset, reason: /durable up to offset/}])

  const keep = records.at(-4)!
  truncateSync(file, keep.offset + keep.length) // three whole records gone, at a record boundary
  const b = await logctl('storage', 'verify', dir, '--json')
  t.equal(b.code, 7)
  t.match(parse<Summary>(b.stdout).problems, [{kind: 'corruption', offset: keep.offset + keep.length, reason: /acknowledged records are missing/}])
})

t.test('verify: a damaged checkpoint is reported, exit 7', async t => {
  const dir = copy()
  flipByte(join(dir, 'index.ckpt'), 40)
  const r = await logctl('storage', 'verify', dir, '--json')
  t.equal(r.code, 7)
  const s = parse<Summary>(r.stdout)
  t.match(s, {checkpoint: {present: true, valid: false}, ...EXPECTED})
  t.match(s.problems, [{kind: 'bad-checkpoint', file: 'index.ckpt', reason: /checksum/}])
})

t.test('verify: an unreadable segment header is corruption at offset 0; the other segments are still read', async t => {
  const dir = copy()
  const id = segs[0]!
  const inFirst = [...scanSegment(segPath(dir, id))].filter(i => i.kind === 'record').length
  flipByte(segPath(dir, id), 20)
  const r = await logctl('storage', 'verify', dir, '--json')
  t.equal(r.code, 7)
  const s = parse<Summary>(r.stdout)
  t.match(s.problems, [{kind: 'corruption', file: join('segments', segmentFileName(id)), offset: 0, reason: /header checksum/}])
  t.equal(s.records, EXPECTED.records - inFirst)
})

t.test('verify: a directory of another format version is refused with exit 7', async t => {
  const dir = copy()
  writeFileSync(join(dir, 'FORMAT'), 'logctl-data 99\n')
  const r = await logctl('storage', 'verify', dir)
  t.equal(r.code, 7)
  t.match(r.stderr, /^Error: .* holds on-disk format 99; this logctl reads format 1$/m)
  t.match(r.stderr, /\(LOG_ERR_BAD_FORMAT_VERSION\)$/m)
})

t.test('verify: a directory a live process holds is still read, with a note', async t => {
  const dir = copy()
  const engine = await StorageEngine.open({...SMALL, dir})
  try {
    const r = await logctl('storage', 'verify', dir)
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, `note: process ${process.pid} holds this directory`)
  } finally {
    await engine.close()
  }
})

t.test('verify: empty data directories are OK', async t => {
  const bare = join(root, 'bare')
  mkdirSync(join(bare, 'segments'), {recursive: true})
  const r = await logctl('storage', 'verify', bare, '--json')
  t.equal(r.code, 0, r.stderr)
  t.match(parse<Summary>(r.stdout), {ok: true, segments: 0, ledgers: 0, entries: 0, problems: [], checkpoint: {present: false}})

  const fresh = join(root, 'fresh') // opened and closed twice, nothing written: one empty segment and a checkpoint
  await withEngine(fresh, async () => undefined)
  await withEngine(fresh, async () => undefined)
  const f = await logctl('storage', 'verify', fresh, '--json')
  t.equal(f.code, 0, f.stderr)
  t.match(parse<Summary>(f.stdout), {ok: true, records: 0, ledgers: 0, problems: [], checkpoint: {present: true, valid: true}})
})

t.test('dump: every record as stored, --ledger filters, --json shape', async t => {
  const r = await logctl('storage', 'dump', pristine, '--json')
  t.equal(r.code, 0, r.stderr)
  const d = parse<DumpJson>(r.stdout)
  t.same(d.skipped, [])
  t.equal(d.records.length, EXPECTED.records, 'deleted ledgers\' records are listed too (a raw view)')
  const l2 = d.records.filter(x => x.ledgerId === '2')
  t.equal(l2.filter(x => x.type === 'ENTRY').length, 60)
  t.match(l2.at(-1), {type: 'DELETE', entryId: '0'})
  t.match(d.records.find(x => x.ledgerId === '3' && x.type === 'FENCE'), {size: 0})
  t.match(d.records[0], {ledgerId: /^\d+$/, entryId: '0', type: 'ENTRY', size: 1000, stored: 1000, compressed: false, lac: '-1', batch: /^\d+$/, segment: segmentFileName(segs[0]!), offset: 64})

  const f = await logctl('storage', 'dump', pristine, '--ledger', '4', '--json')
  t.equal(f.code, 0, f.stderr)
  const l4 = parse<DumpJson>(f.stdout).records
  t.same(l4.map(x => x.entryId), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
  for (const x of l4) {
    t.match(x, {ledgerId: '4', size: 4096, compressed: true})
    t.ok(x.stored < x.size, 'stored compressed')
  }

  const none = await logctl('storage', 'dump', pristine, '--ledger=18446744073709551615', '--json')
  t.equal(none.code, 0)
  t.same(parse<DumpJson>(none.stdout).records, [])

  const human = await logctl('storage', 'dump', pristine, '-l', '4')
  t.equal(human.code, 0)
  const lines = human.stdout.trimEnd().split('\n')
  t.match(lines[0], /^LEDGER\s+ENTRY\s+TYPE\s+SIZE\s+STORED\s+LAC\s+FLAGS\s+SEGMENT\s+OFFSET$/)
  t.equal(lines.length, 11, 'a header and ten rows')
  t.match(lines[1], /^\s*4\s+0\s+ENTRY\s+4096\s+\d+\s+-1\s+lz4\s+\d{20}\.log\s+\d+$/)
  t.equal(new Set(lines.map(l => l.length)).size, 1, 'aligned columns (the last one is right-aligned)')
  t.match(human.stderr, /10 record\(s\)/)
})

t.test('dump: a damaged region is skipped and reported', async t => {
  const dir = copy()
  const file = segPath(dir, segs[1]!)
  const victim = [...scanSegment(file)].filter(i => i.kind === 'record')[3]!
  flipByte(file, victim.offset + 60)
  const r = await logctl('storage', 'dump', dir, '--json')
  t.equal(r.code, 0)
  const d = parse<DumpJson>(r.stdout)
  t.equal(d.records.length, EXPECTED.records - 1)
  t.match(d.skipped, [{segment: segmentFileName(segs[1]!), offset: victim.offset, reason: 'payload digest mismatch'}])
  const human = await logctl('storage', 'dump', dir)
  t.match(human.stderr, /note: skipped 1 unreadable region/)
})

t.test('bad input exits 2 with a clear message', async t => {
  const missing = await logctl('storage', 'verify', join(root, 'no-such-dir'))
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^Error: .*no-such-dir: no such directory$/m)
  t.match(missing.stderr, /^Hint: .*logctl storage verify --help.*\(LOG_ERR_BAD_INPUT\)$/m)

  const notData = await logctl('storage', 'dump', root)
  t.equal(notData.code, 2)
  t.match(notData.stderr, /is not a logctl data directory/)

  const json = await logctl('storage', 'verify', join(root, 'no-such-dir'), '--json')
  t.equal(json.code, 2, '--json keeps the mapped exit code (oclif 4 would exit 1)')
  const e = parse<ErrorJson>(json.stdout)
  t.same(Object.keys(e.error).sort(), ['code', 'detail', 'message'])
  t.match(e.error, {code: 'LOG_ERR_BAD_INPUT', message: /no such directory/, detail: {dir: join(root, 'no-such-dir')}})

  for (const bad of [['--ledger', '-1'], ['--ledger=-1'], ['--ledger', 'abc'], ['--ledger', '18446744073709551616'], ['--ledger', '1.5']]) {
    const r = await logctl('storage', 'dump', pristine, ...bad)
    t.equal(r.code, 2, bad.join(' '))
    t.match(r.stderr, /^Error: --ledger: ledger id /m, bad.join(' '))
  }
  const badJson = await logctl('storage', 'dump', pristine, '--ledger', 'abc', '--json')
  t.equal(badJson.code, 2)
  t.match(parse<ErrorJson>(badJson.stdout).error, {code: 'LOG_ERR_BAD_INPUT', message: /^--ledger: /})

  const noArg = await logctl('storage', 'verify')
  t.equal(noArg.code, 2)
  t.match(noArg.stderr, /Missing 1 required arg/)
})

t.test('help, version, and a mistyped command', async t => {
  const help = await logctl('--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /storage\s+Inspect a bookie's data directory/)
  t.notMatch(help.stdout, /^\s+base\b/m, 'the base class is not listed as a command')

  const topic = await logctl('storage', '--help')
  t.match(topic.stdout, /storage dump\s+List the records/)
  t.match(topic.stdout, /storage verify\s+Check every record/)

  const cmd = await logctl('storage', 'verify', '--help')
  t.match(cmd.stdout, /\$ logctl storage verify DIR \[--json\]/)

  const version = await logctl('--version')
  t.equal(version.code, 0)
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {version: string}
  t.match(version.stdout, new RegExp(`^logctl/${pkg.version.replaceAll('.', '\\.')} `))

  const typo = await logctl('storag', 'verify')
  t.equal(typo.code, 127, 'not a TTY: no prompt, exit 127')
  t.match(typo.stderr, /storag verify is not a logctl command/)
})

// plugin-not-found only offers its suggestion on a terminal; give it one with script(1).
const hasScript = spawnSync('script', ['--version']).status === 0
t.test('a mistyped command on a terminal suggests the right one', {skip: hasScript ? false : 'script(1) is not installed'}, async t => {
  const child = spawn('script', ['-qec', `${process.execPath} bin/run.js storag verify`, '/dev/null'], {cwd: ROOT})
  let out = ''
  let answered = false
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    if (!answered && /Did you mean/.test(out)) {
      answered = true
      child.stdin.write('n\r') // decline (and Enter): the command must not run
    }
  })
  const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)))
  t.ok(answered, 'the prompt appeared')
  const plain = out.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '')
  t.match(plain, /Did you mean storage verify\?/)
  t.equal(code, 127)
})

t.test('verify and dump never modified the pristine directory', async t => {
  t.same(snapshot(pristine), pristineFiles)
})
