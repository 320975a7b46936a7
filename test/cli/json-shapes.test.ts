// docs/CLI.md and the program cannot drift apart: every command oclif lists has a section in docs/CLI.md
// with exactly one ```json example of its --json output, and every command that can run here is run (the
// built bin/run.js in a subprocess, against a real 3-bookie cluster) with --json and its output compared
// with that example: the same keys, and the same JSON type for every value (string, number, boolean,
// object, array, null), recursively into objects and into the first element of arrays. Change an output
// and this test fails until the example is updated. Not run: `standalone` (it runs until stopped) and
// `read --follow`.
import t, {type Test} from 'tap'
import {closeSync, cpSync, openSync, readFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {Config} from '@oclif/core'
import {segmentFileName} from '../../src/engine/format.js'
import {listSegments} from '../../src/engine/replay.js'
import {scanSegment} from '../../src/engine/scan.js'
import {Cluster} from '../helpers/cluster.js'
import {logctl, ROOT, tempDir, type RunResult, logctlWithInput} from './helpers.js'


// ---- docs/CLI.md ---------------------------------------------------------------------------------------

interface Section {
  heading: string
  /** The text of every ```json block up to the next heading. */
  json: string[]
}

/** Headings (outside code blocks) with the ```json blocks under each. */
function sections(markdown: string): Section[] {
  const out: Section[] = []
  let current: Section | undefined
  let fence: {json: boolean; lines: string[]} | undefined
  for (const line of markdown.split('\n')) {
    if (fence) {
      if (/^```\s*$/.test(line)) {
        if (fence.json && current) current.json.push(fence.lines.join('\n'))
        fence = undefined
      } else {
        fence.lines.push(line)
      }
      continue
    }
    const open = /^```(\S*)/.exec(line)
    if (open) {
      fence = {json: open[1] === 'json', lines: []}
      continue
    }
    const heading = /^#{1,6}\s+(.*)$/.exec(line)
    if (heading) {
      current = {heading: heading[1]!.trim(), json: []}
      out.push(current)
    }
  }
  return out
}

/** The command a heading documents: "`logctl ledger write [-f FILE] ...`" -> "ledger write". */
function commandOf(heading: string): string | undefined {
  return /^`logctl ([a-z][a-z-]*(?: [a-z][a-z-]*)*)/.exec(heading)?.[1]
}

const DOC = 'docs/CLI.md'
const docSections = sections(readFileSync(join(ROOT, DOC), 'utf8'))
const byCommand = new Map<string, Section[]>()
for (const s of docSections) {
  const c = commandOf(s.heading)
  if (c !== undefined) byCommand.set(c, [...(byCommand.get(c) ?? []), s])
}

/** The parsed ```json example of a command's section (or of the section whose heading starts with `heading`). */
function example(command: string): unknown {
  const found = byCommand.get(command) ?? docSections.filter(s => s.heading.startsWith(command))
  if (found.length !== 1 || found[0]!.json.length !== 1) throw new Error(`${DOC}: no single section with one \`\`\`json example for "${command}"`)
  return JSON.parse(found[0]!.json[0]!)
}

// ---- shapes ----------------------------------------------------------------------------------------------

/** Objects whose keys are data, not structure: only their type is compared. */
const FREE_FORM = new Set(['error.detail', 'customMetadata', 'errorsByCode'])

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

/**
 * Where `actual` differs in structure from `doc`: missing or extra keys, or another JSON type. Arrays: the
 * first elements are compared when both have one; a documented element the output lacks is fine (nothing
 * to compare), an output element the doc does not show is a difference.
 */
function shapeDiff(doc: unknown, actual: unknown, path = ''): string[] {
  const at = path === '' ? '(top level)' : path
  const kd = kind(doc)
  const ka = kind(actual)
  if (kd !== ka) return [`${at}: the doc shows ${kd}, the output has ${ka}`]
  if (FREE_FORM.has(path)) return []
  if (Array.isArray(doc) && Array.isArray(actual)) {
    if (actual.length === 0) return []
    if (doc.length === 0) return [`${at}: the doc shows an empty array, the output has elements like ${JSON.stringify(actual[0])}`]
    return shapeDiff(doc[0], actual[0], `${path}[0]`)
  }
  if (kd === 'object') {
    const d = doc as Record<string, unknown>
    const a = actual as Record<string, unknown>
    const diffs: string[] = []
    const key = (k: string): string => (path === '' ? k : `${path}.${k}`)
    for (const k of Object.keys(d)) if (!(k in a)) diffs.push(`${key(k)}: in the doc, not in the output`)
    for (const k of Object.keys(a)) if (!(k in d)) diffs.push(`${key(k)}: in the output (${JSON.stringify(a[k])}), not in the doc`)
    for (const k of Object.keys(d)) if (k in a) diffs.push(...shapeDiff(d[k], a[k], key(k)))
    return diffs
  }
  return []
}

// ---- running commands ------------------------------------------------------------------------------------


function parseJson(t: Test, what: string, text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    t.fail(`${what}: stdout is not one JSON document (${(err as Error).message}): ${JSON.stringify(text.slice(0, 300))}`)
    return undefined
  }
}

/** A finished --json run: exit `code`, nothing on stderr, stdout exactly one JSON document shaped like `command`'s example. */
function checkDocument(t: Test, command: string, r: RunResult, code = 0): unknown {
  t.equal(r.code, code, `${command} --json exits ${code}`, {stderr: r.stderr})
  t.equal(r.stderr, '', `${command} --json prints nothing on stderr`)
  const out = parseJson(t, command, r.stdout)
  t.same(shapeDiff(example(code === 0 ? command : 'Errors'), out), [], `${command} --json has the shape of its example in ${DOC}`)
  return out
}

/** A streaming --json run: exit 0, nothing on stderr, every stdout line one JSON object shaped like the example line. */
function checkLines(t: Test, command: string, r: RunResult, expectLines: number): unknown[] {
  t.equal(r.code, 0, `${command} --json exits 0`, {stderr: r.stderr})
  t.equal(r.stderr, '', `${command} --json prints nothing on stderr`)
  t.ok(r.stdout.endsWith('\n'), `${command} --json ends its last line`)
  const lines = r.stdout.split('\n').filter(l => l !== '')
  t.equal(lines.length, expectLines, `${command} --json prints one line per entry`)
  const parsed = lines.map((l, i) => parseJson(t, `${command} line ${i + 1}`, l))
  const doc = example(command)
  const diffs = new Set(parsed.flatMap(p => shapeDiff(doc, p)))
  t.same([...diffs], [], `every ${command} --json line has the shape of its example in ${DOC}`)
  return parsed
}

const str = (v: unknown, key: string): string => String((v as Record<string, unknown>)[key])

// ---- the tests -------------------------------------------------------------------------------------------

const config = await Config.load(ROOT)
const commands = config.commands.filter(c => c.pluginName === config.name).map(c => c.id.replaceAll(':', ' ')).sort()

t.test(`${DOC} has a section with exactly one \`\`\`json example for every command`, async t => {
  t.ok(commands.length >= 23, `oclif lists logctl's commands (${commands.join(', ')})`)
  for (const c of commands) {
    const found = byCommand.get(c) ?? []
    t.equal(found.length, 1, `one section for \`logctl ${c}\``)
    if (found.length !== 1) continue
    t.equal(found[0]!.json.length, 1, `one \`\`\`json example in the section of \`logctl ${c}\``)
    t.doesNotThrow(() => example(c), `the example of \`logctl ${c}\` is valid JSON`)
  }
  t.same([...byCommand.keys()].filter(c => !commands.includes(c)), [], `${DOC} documents no command that does not exist`)
  t.doesNotThrow(() => example('Errors'), 'the error example is valid JSON')
})

t.test('every command prints --json output of the shape docs/CLI.md shows', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const run = (...args: string[]): Promise<RunResult> => logctl(...args, ...md, '--json')

  // Named logs. Two entries per segment, so that there are closed segments to list and to truncate.
  checkDocument(t, 'create', await run('create', 'orders', '--segment-entries', '2'))
  checkLines(t, 'append', await run('append', 'orders', '-m', 'a', '-m', 'b', '-m', 'c', '-m', 'd', '-m', 'e'), 5)
  const fromStdin = checkLines(t, 'append', await logctlWithInput('{"id":1}\n{"id":2}\n', 'append', 'orders', ...md, '--json'), 2)
  t.same(fromStdin, [{offset: 5}, {offset: 6}], 'append from stdin: offsets 5 and 6')
  const read = checkLines(t, 'read', await run('read', 'orders', '--from', '4'), 3)
  t.equal(str(read[2], 'payload'), '{"id":2}')
  checkDocument(t, 'cursor set', await run('cursor', 'set', 'orders', 'billing', '2'))
  checkDocument(t, 'cursor list', await run('cursor', 'list', 'orders'))
  checkDocument(t, 'logs', await run('logs'))
  checkDocument(t, 'log info', await run('log', 'info', 'orders'))
  const truncated = checkDocument(t, 'truncate', await run('truncate', 'orders', '--before', '2'))
  t.equal(str(truncated, 'firstOffset'), '2')

  // Ledgers: one written, read, inspected, recovered and deleted; another kept for the under-replicated list.
  const written = checkDocument(t, 'ledger write', await logctlWithInput('l1\nl2\n', 'ledger', 'write', ...md, '--json'))
  const id = str(written, 'ledgerId')
  checkLines(t, 'ledger read', await run('ledger', 'read', id), 2)
  checkDocument(t, 'ledger info', await run('ledger', 'info', id))
  checkDocument(t, 'ledger list', await run('ledger', 'list'))
  checkDocument(t, 'ledger recover', await run('ledger', 'recover', id))
  checkDocument(t, 'ledger delete', await run('ledger', 'delete', id))
  checkDocument(t, 'ledger write', await logctlWithInput('kept\n', 'ledger', 'write', ...md, '--json'))

  checkDocument(t, 'bookie list', await run('bookie', 'list'))
  checkDocument(t, 'cluster status', await run('cluster', 'status'))
  if (commands.includes('bench')) checkDocument(t, 'bench', await run('bench', 'e2e', '--entries', '200', '--size', '100'))
  checkDocument(t, 'log delete', await run('log', 'delete', 'orders'))

  // An error: the shape of the "Errors" example, and its exit code.
  const missing = checkDocument(t, 'log info', await run('log', 'info', 'no-such-log'), 3)
  t.equal((missing as {error?: {code?: string}}).error?.code, 'LOG_ERR_NO_SUCH_LOG')

  // One bookie stopped: it is listed as down and the kept ledger as under-replicated.
  const stopped = cluster.bookie(2)
  await stopped.stop()
  const bookies = checkDocument(t, 'bookie list', await run('bookie', 'list')) as {bookies: Array<{status: string}>}
  t.ok(bookies.bookies.some(b => b.status === 'down'), 'bookie list shows the stopped bookie as down')
  const status = checkDocument(t, 'cluster status', await run('cluster', 'status')) as {underReplicated: unknown[]}
  t.ok(status.underReplicated.length > 0, 'cluster status lists under-replicated ledgers')

  // storage: the stopped bookie's directory as it is, and a copy with junk at the end (a torn tail).
  checkDocument(t, 'storage verify', await logctl('storage', 'verify', stopped.dataDir, '--json'))
  checkDocument(t, 'storage dump', await logctl('storage', 'dump', stopped.dataDir, '--json'))
  const tmp = tempDir(t, 'logctl-json-shapes-')
  const torn = join(tmp, 'torn')
  cpSync(stopped.dataDir, torn, {recursive: true})
  // Where the records end (the preallocated zeros begin), as a crash mid-write leaves it.
  const lastSegment = join(torn, 'segments', segmentFileName(listSegments(torn).at(-1)!))
  const end = [...scanSegment(lastSegment)].find(i => i.kind === 'end')!.offset
  const fd = openSync(lastSegment, 'r+')
  writeSync(fd, Buffer.from('this is not a record, it is junk'), 0, 32, end)
  closeSync(fd)
  const verify = checkDocument(t, 'storage verify', await logctl('storage', 'verify', torn, '--json')) as {problems: unknown[]}
  t.equal(verify.problems.length, 1, 'the junk is a problem (a torn tail)')
  const dump = checkDocument(t, 'storage dump', await logctl('storage', 'dump', torn, '--json')) as {skipped: unknown[]}
  t.equal(dump.skipped.length, 1, 'the junk is a skipped region')

  // No cluster needed.
  checkDocument(t, 'demo', await logctl('demo', '--dir', join(tmp, 'demo'), '--entries', '200', '--size', '64', '--json'))
  checkDocument(t, 'daemon', await logctl('daemon', '--print-systemd-unit', ...md, '--json'))
})
