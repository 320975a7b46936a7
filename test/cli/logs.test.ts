// `logctl create / append / read / logs / log info / log delete / truncate / cursor list / cursor set` run as a
// user runs them (subprocesses of the built CLI) against a real cluster of bookie daemons: what each prints,
// that every --json output parses (and has the documented shape), `append --json` acknowledging each entry
// on its own line in order, and the documented exit codes for bad input (2), not found (3), fenced (4) and
// an existing log (9).
import t, {type Test} from 'tap'
import {spawn} from 'node:child_process'
import {LogctlClient} from '../../src/client/client.js'
import type {LogEntry} from '../../src/client/log.js'
import {Cluster} from '../helpers/cluster.js'
import {logctl, ROOT, type RunResult, logctlWithInput} from './helpers.js'

const DEADLINE_MS = 20_000


/** One JSON document per line (the streamed outputs: `append --json`, `read --json`). */
function jsonLines(t: Test, out: string): Array<Record<string, unknown>> {
  return out.split('\n').filter(l => l !== '').map(l => {
    try {
      return JSON.parse(l) as Record<string, unknown>
    } catch {
      t.fail(`not JSON: ${l}`)
      return {}
    }
  })
}

/** The whole stdout as one JSON document (the --json result of every other command, and of errors). */
function json<T = Record<string, unknown>>(t: Test, r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    t.fail(`stdout is not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`)
    return {} as T
  }
}

async function collect(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  for await (const e of it) out.push(e)
  return out
}

interface ReadLine {
  offset: string
  time: string
  payload: string
}

const cluster = await Cluster.start(t, {bookies: 3})
const md = ['--metadata', cluster.metadataUrl]

t.test('create, append (stdin and -m), read (--from --limit, --cursor --commit), cursors, truncate, logs, log info, log delete', async t => {
  const created = await logctl('create', 'orders', ...md, '-e', '3', '-w', '2', '-a', '2', '--segment-entries', '5', '--json')
  t.equal(created.code, 0, created.stderr)
  const meta = json<{segments: unknown[]}>(t, created)
  t.match(meta, {name: 'orders', firstOffset: '0', writer: null,
    config: {ensembleSize: 3, writeQuorum: 2, ackQuorum: 2, segmentEntries: 5, segmentBytes: 256 * 1024 * 1024, retentionMs: 0, retentionBytes: 0, compression: 'none'}})
  t.same(meta.segments, [], 'no segment before the first append')
  const human = await logctl('create', 'orders-2', ...md, '--retention-hours', '2', '--retention-bytes', '4096', '--segment-seconds', '60', '--compression', 'lz4')
  t.equal(human.code, 0, human.stderr)
  t.equal(human.stdout.trim(), 'created log orders-2')

  const lines = Array.from({length: 12}, (_, i) => `{"order":${i},"note":"line ${i}"}`)
  const fromStdin = await logctlWithInput(lines.join('\n') + '\n', 'append', 'orders', ...md, '--json')
  t.equal(fromStdin.code, 0, fromStdin.stderr)
  t.same(jsonLines(t, fromStdin.stdout), lines.map((_, i) => ({offset: i})), 'one {"offset":N} line per entry, in order')
  const fromFlags = await logctl('append', 'orders', ...md, '-m', 'first message', '-m', 'second message', '--json')
  t.equal(fromFlags.code, 0, fromFlags.stderr)
  t.same(jsonLines(t, fromFlags.stdout), [{offset: 12}, {offset: 13}], 'a new writer goes on at the next offset')
  const all = [...lines, 'first message', 'second message']

  const plain = await logctl('read', 'orders', ...md)
  t.equal(plain.code, 0, plain.stderr)
  t.same(plain.stdout.split('\n').slice(0, -1), all, 'one entry per line, as appended')
  const some = await logctl('read', 'orders', ...md, '--from', '3', '--limit', '4', '--json')
  t.equal(some.code, 0, some.stderr)
  const read = jsonLines(t, some.stdout) as unknown as ReadLine[]
  t.same(read.map(e => Object.keys(e).sort()), Array.from({length: 4}, () => ['offset', 'payload', 'time']), 'each line is {offset, time, payload}')
  t.same(read.map(e => [String(e.offset), e.payload]), [3, 4, 5, 6].map(i => [String(i), all[i]]))
  t.ok(read.every(e => typeof e.time === 'string' && new Date(e.time).toISOString() === e.time), 'time is an ISO timestamp')

  // A consumer reading through its cursor, committing as it prints.
  const billing = await logctl('read', 'orders', ...md, '--cursor', 'billing', '--limit', '5', '--commit', '--json')
  t.equal(billing.code, 0, billing.stderr)
  t.same(jsonLines(t, billing.stdout).map(e => String(e['offset'])), ['0', '1', '2', '3', '4'])
  const cursors = await logctl('cursor', 'list', 'orders', ...md, '--json')
  t.equal(cursors.code, 0, cursors.stderr)
  t.match(json(t, cursors), {cursors: [{name: 'billing', offset: '5', lag: '9', updatedAt: Number}]})
  const rest = await logctl('read', 'orders', ...md, '--cursor', 'billing', '--commit', '--json')
  t.same(jsonLines(t, rest.stdout).map(e => String(e['offset'])), ['5', '6', '7', '8', '9', '10', '11', '12', '13'], 'resumes at the commit')

  const set = await logctl('cursor', 'set', 'orders', 'audit', '7', ...md, '--json')
  t.equal(set.code, 0, set.stderr)
  t.same(json(t, set), {log: 'orders', cursor: 'audit', offset: '7'})
  const table = await logctl('cursor', 'list', 'orders', ...md)
  t.equal(table.code, 0, table.stderr)
  t.match(table.stdout, /^CURSOR\s+OFFSET\s+LAG\s+UPDATED\n/)
  t.match(table.stdout, /\naudit\s+7\s+7\s+\S+\n/)
  t.match(table.stdout, /\nbilling\s+14\s+0\s+\S+\n/)

  // Segments: [0..4] [5..9] [10..11] from the first append (it rolls every 5 and seals on exit), [12..13].
  let info = json<{segments: Array<{firstOffset: string; lastOffset: string; state: string}>}>(t, await logctl('log', 'info', 'orders', ...md, '--json'))
  t.same(info.segments.map(s => [s.firstOffset, s.lastOffset, s.state]), [['0', '4', 'CLOSED'], ['5', '9', 'CLOSED'], ['10', '11', 'CLOSED'], ['12', '13', 'CLOSED']])
  const held = await logctl('truncate', 'orders', '--before', '12', ...md, '--json')
  t.equal(held.code, 0, held.stderr)
  t.match(json(t, held), {removedSegments: 1, firstOffset: '5'}, 'the audit cursor at 7 keeps 5..9')
  const forced = await logctl('truncate', 'orders', '--before', '12', '--force', ...md)
  t.equal(forced.code, 0, forced.stderr)
  t.equal(forced.stdout.trim(), 'removed 2 segments; orders now starts at offset 12')
  const belowJson = await logctl('read', 'orders', '--from', '11', ...md, '--json')
  t.equal(belowJson.code, 2, 'below the first offset: exit 2')
  t.match(json(t, belowJson), {error: {code: 'LOG_ERR_OUT_OF_RANGE', detail: {firstOffset: '12'}}})
  const kept = await logctl('read', 'orders', ...md)
  t.same(kept.stdout.split('\n').slice(0, -1), ['first message', 'second message'], 'a read starts at the new first offset')

  const logs = await logctl('logs', ...md, '--json')
  t.equal(logs.code, 0, logs.stderr)
  const listed = json<{logs: Array<Record<string, unknown>>}>(t, logs).logs
  t.same(listed.map(l => l['name']).sort(), ['orders', 'orders-2'])
  t.match(listed.find(l => l['name'] === 'orders'), {firstOffset: '12', endOffset: '14', entries: '2', writer: null, segments: [{firstOffset: '12'}]})
  t.match(listed.find(l => l['name'] === 'orders-2'), {entries: '0', config: {retentionMs: 2 * 3_600_000, retentionBytes: 4096, segmentAgeMs: 60_000, compression: 'lz4'}})
  const logsTable = await logctl('logs', ...md)
  t.match(logsTable.stdout, /^LOG\s+ENTRIES\s+BYTES\s+SEGMENTS\s+FIRST\s+LAST\s+WRITER\n/)
  t.match(logsTable.stdout, /\norders\s+2\s+\d+\s+1\s+12\s+13\s+-\n/)
  info = json(t, await logctl('log', 'info', 'orders', ...md, '--json'))
  t.match(info, {name: 'orders', firstOffset: '12', endOffset: '14', entries: '2', cursors: [{name: 'audit', offset: '7'}, {name: 'billing', offset: '14'}]})
  const infoText = await logctl('log', 'info', 'orders', ...md)
  t.match(infoText.stdout, /^log orders: offsets 12\.\.13 \(2 entries/)

  const deleted = await logctl('log', 'delete', 'orders', ...md, '--json')
  t.equal(deleted.code, 0, deleted.stderr)
  t.same(json(t, deleted), {name: 'orders', ledgers: 1})
  const gone = await logctl('log', 'info', 'orders', ...md)
  t.equal(gone.code, 3, 'not found: exit 3')
  t.match(gone.stderr, /LOG_ERR_NO_SUCH_LOG/)
})

t.test('append --json acknowledges each stdin line as it is durable; a writer taken over exits 4 (FENCED)', async t => {
  t.equal((await logctl('create', 'tail', ...md)).code, 0)
  const client = await LogctlClient.connect({metadata: cluster.metadataUrl})
  t.teardown(() => client.close())
  const first = spawn(process.execPath, ['bin/run.js', 'append', 'tail', ...md, '--json'], {cwd: ROOT, env: {...process.env, NO_COLOR: '1'}})
  t.teardown(() => { if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL') })
  let stdout = ''
  const onStdout = new Set<() => void>()
  first.stdout.on('data', d => {
    stdout += d
    for (const f of [...onStdout]) f()
  })
  const exited = new Promise<number>(resolve => first.on('close', code => resolve(code ?? 1)))
  first.stdin.write('one\ntwo\n')
  // Wait until both entries are durable (a reader sees them), with stdin still open.
  const seen = await collect((await client.openLog('tail')).follow({from: 0n, to: 1n, pollMs: 100, signal: AbortSignal.timeout(DEADLINE_MS)}))
  t.same(seen.map(e => e.payload.toString()), ['one', 'two'])
  // What broke (fixed): `append` (src/commands/append.ts with src/client/pipeline.ts, since 54d0910) hands a result to its
  // printer only when it makes room in a full window of 1024 or at the end of stdin, so with stdin open
  // no acknowledgement is printed at all, although `append --help` promises each one "as soon as it is
  // acknowledged". The entries being visible to a reader, the lines must follow at once.
  const printed = await new Promise<boolean>(resolve => {
    const check = (): void => {
      if (stdout.split('\n').length <= 2) return
      onStdout.delete(check)
      clearTimeout(timer)
      resolve(true)
    }
    const timer = setTimeout(() => {
      onStdout.delete(check)
      resolve(false)
    }, 5000)
    onStdout.add(check)
    check()
  })
  t.ok(printed, 'both acknowledgements are printed while stdin is still open')

  const takeover = await logctl('append', 'tail', ...md, '-m', 'three', '--json')
  t.equal(takeover.code, 0, takeover.stderr)
  t.same(jsonLines(t, takeover.stdout), [{offset: 2}], 'the new writer starts right after the recovered entries')
  first.stdin.end('lost\n')
  t.equal(await exited, 4, 'the old writer, fenced, exits 4')
  const lines = stdout.split('\n')
  t.same(lines.slice(0, 2).map(l => JSON.parse(l)), [{offset: 0}, {offset: 1}], 'its acknowledgements, in order')
  t.match(JSON.parse(lines.slice(2).join('\n')), {error: {code: 'LOG_ERR_FENCED'}}, 'then the error, as JSON')
  const read = await logctl('read', 'tail', ...md, '--json')
  t.same(jsonLines(t, read.stdout).map(e => [String(e['offset']), e['payload']]), [['0', 'one'], ['1', 'two'], ['2', 'three']], 'nothing of the fenced writer after the takeover')
})

t.test('bad input exits 2, not found 3, an existing log 9; every --json error parses', async t => {
  t.equal((await logctl('create', 'dup', ...md)).code, 0)
  const cases: Array<{args: string[]; exit: number; code: string}> = [
    {args: ['create', 'bad/name'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['create', 'quorums', '-e', '2', '-w', '3'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['create', 'dup'], exit: 9, code: 'LOG_ERR_LOG_EXISTS'},
    {args: ['read', 'nope'], exit: 3, code: 'LOG_ERR_NO_SUCH_LOG'},
    {args: ['append', 'nope', '-m', 'x'], exit: 3, code: 'LOG_ERR_NO_SUCH_LOG'},
    {args: ['log', 'info', 'nope'], exit: 3, code: 'LOG_ERR_NO_SUCH_LOG'},
    {args: ['log', 'delete', 'nope'], exit: 3, code: 'LOG_ERR_NO_SUCH_LOG'},
    {args: ['truncate', 'nope', '--before', '1'], exit: 3, code: 'LOG_ERR_NO_SUCH_LOG'},
    {args: ['read', 'dup', '--from', '5'], exit: 2, code: 'LOG_ERR_OUT_OF_RANGE'},
    {args: ['read', 'dup', '--from=-1'], exit: 2, code: 'LOG_ERR_OUT_OF_RANGE'},
    {args: ['read', 'dup', '--from', 'abc'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['read', 'dup', '--commit'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['cursor', 'set', 'dup', 'c', 'abc'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['cursor', 'set', 'dup', 'bad/cursor', '1'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['truncate', 'dup'], exit: 2, code: 'LOG_ERR_BAD_INPUT'},
    {args: ['truncate', 'dup', '--before=-1'], exit: 2, code: 'LOG_ERR_OUT_OF_RANGE'},
  ]
  // Three at a time: each is a short-lived process.
  const results: RunResult[] = []
  for (let i = 0; i < cases.length; i += 3) {
    results.push(...await Promise.all(cases.slice(i, i + 3).map(c => logctl(...c.args, ...md, '--json'))))
  }
  cases.forEach((c, i) => {
    const r = results[i]!
    const what = `logctl ${c.args.join(' ')}`
    t.equal(r.code, c.exit, `${what}: exit ${c.exit}`)
    t.match(json(t, r), {error: {code: c.code, message: String}}, `${what}: ${c.code}`)
  })
  // Without --json: the message and a hint with the code on stderr, nothing on stdout.
  const human = await logctl('read', 'nope', ...md)
  t.equal(human.code, 3)
  t.equal(human.stdout, '')
  t.match(human.stderr, /Error: no log named nope[\s\S]*Hint: .*\(LOG_ERR_NO_SUCH_LOG\)/)
  const exists = await logctl('create', 'dup', ...md)
  t.equal(exists.code, 9)
  t.match(exists.stderr, /LOG_ERR_LOG_EXISTS/)
})
