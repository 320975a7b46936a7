// `logctl bench` run as a user runs it (the built CLI in a subprocess) against a real cluster of bookie
// daemons: its --json summary agrees with what a read-back of the log finds; at a fixed rate a bookie
// stalled with SIGSTOP shows up in full in p99/max (latency from the intended send time) while the run goes
// on by ensemble change; Ctrl-C prints the summary so far; consumers get every entry; bad flags exit 2.
import t from 'tap'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import hdr from 'hdr-histogram-js'
import {readHeader} from '../../src/bench/payloads.js'
import type {BenchSummary} from '../../src/bench/summary.js'
import {LogctlClient} from '../../src/client/client.js'
import {Cluster} from '../helpers/cluster.js'
import {logctl, ROOT, tempDir, type RunResult} from './helpers.js'

interface Running {
  /** The first report line on stderr (the run is under way). */
  firstReport: Promise<string>
  done: Promise<RunResult>
  signal(sig: NodeJS.Signals): void
}

function startBench(...args: string[]): Running {
  const p = spawn(process.execPath, ['bin/run.js', 'bench', ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1'}})
  let stdout = ''
  let stderr = ''
  p.stdout.on('data', d => { stdout += d })
  const done = new Promise<RunResult>(resolve => p.on('close', code => resolve({code: code ?? 1, stdout, stderr})))
  const firstReport = new Promise<string>((resolve, reject) => {
    createInterface({input: p.stderr}).on('line', line => {
      stderr += line + '\n'
      if (line.startsWith('[')) resolve(line)
    })
    void done.then(r => reject(new Error(`bench ended (exit ${r.code}) before its first report line:\n${r.stderr}`)))
  })
  firstReport.catch(() => undefined)
  return {firstReport, done, signal: sig => p.kill(sig)}
}

function summaryOf(r: RunResult): BenchSummary {
  try {
    return JSON.parse(r.stdout) as BenchSummary
  } catch {
    throw new Error(`no JSON summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

/** Every entry of a log: count, payload bytes, and whether each producer's sequence numbers go up by one. */
async function readBack(client: LogctlClient, name: string): Promise<{entries: number; bytes: number; seqInOrder: boolean; producers: Set<number>}> {
  let entries = 0
  let bytes = 0
  let seqInOrder = true
  const producers = new Set<number>()
  for await (const e of (await client.openLog(name)).read({from: 0n})) {
    const h = readHeader(e.payload)
    if (h === undefined || h.seq !== entries) seqInOrder = false
    if (h) producers.add(h.producer)
    entries++
    bytes += e.payload.length
  }
  return {entries, bytes, seqInOrder, producers}
}

t.test('bad flags: exit 2 and a message that names the flag, before any cluster is contacted', async t => {
  const md = ['--metadata', 'sqlite:/nonexistent-logctl-dir/meta.db']
  const cases: Array<[string[], RegExp]> = [
    [['append', '--size=-5'], /--size: must not be negative, got "-5"/],
    [['append', '--rate', 'abc'], /--rate: must be entries per second \(0 = as fast as possible\), got "abc"/],
    [['sideways'], /Expected sideways to be one of: append, read, tail, e2e/],
    [['e2e', '--size', '8'], /e2e mode needs entries of at least 16 bytes/],
  ]
  const results = await Promise.all(cases.map(([args]) => logctl('bench', ...args, ...md)))
  results.forEach((r, i) => {
    const [args, message] = cases[i]!
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, message, `${args.join(' ')}: says what is wrong`)
  })
  const json = await logctl('bench', 'append', '--rate', 'abc', '--json', ...md)
  t.equal(json.code, 2)
  t.match(JSON.parse(json.stdout), {error: {code: 'LOG_ERR_BAD_INPUT', message: /--rate: must be entries per second/}})
})

t.test('against a 3-bookie cluster', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const client = await LogctlClient.connect({metadata: cluster.metadataUrl})
  t.teardown(() => client.close())
  const dir = tempDir(t, 'logctl-bench-test-')

  await t.test('append --json: entries = acknowledged appends = what a read-back of the logs finds', async t => {
    const hlog = join(dir, 'append.hlog')
    const r = await logctl('bench', 'append', ...md, '--duration', '2', '--producers', '2', '--size', '100-300', '--payload', 'text',
      '--outstanding', '64', '--log', 'ba', '--keep', '--report-interval', '1', '--histogram', hlog, '--json')
    t.equal(r.code, 0, r.stderr)
    const s = summaryOf(r)
    t.match(s, {mode: 'append', interrupted: false, errors: 0, errorsByCode: {}, consumed: null, logs: ['ba-0', 'ba-1'], kept: true})
    t.ok(s.entries > 0, `${s.entries} entries`)
    t.equal(s.produced.entries, s.entries)
    t.equal(s.latencyMs?.count, s.entries, 'one latency sample per acknowledged append')
    t.ok(s.latencyMs!.p50 <= s.latencyMs!.p99 && s.latencyMs!.p99 <= s.latencyMs!.max)
    t.ok(Math.abs(s.entriesPerSec - s.entries / s.seconds) < 1)
    t.match(r.stderr, /^\[\s+\d+\.\ds\] \d+ entries, [\d.]+ entries\/s, [\d.]+ MB\/s, 0 errors \| append ms: p50 [\d.]+ p99 [\d.]+ max [\d.]+$/m, 'a report line per interval')

    const back = await Promise.all(s.logs.map(name => readBack(client, name)))
    t.equal(back[0]!.entries + back[1]!.entries, s.entries, 'the logs hold exactly the acknowledged entries')
    t.equal(back[0]!.bytes + back[1]!.bytes, s.bytes, 'and exactly the bytes reported')
    t.ok(back.every(b => b.seqInOrder), 'each producer\'s entries in order, none missing')
    t.same(back.map(b => [...b.producers]), [[0], [1]], 'one producer per log')

    // The histogram log reads back, and holds one sample per acknowledged append.
    const reader = new hdr.HistogramLogReader(readFileSync(hlog, 'utf8'))
    let samples = 0
    for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) {
      t.equal(h.tag, 'append')
      samples += h.totalCount
    }
    t.equal(samples, s.entries, 'histogram log: every sample, in the intervals')
    for (const name of s.logs) await client.deleteLog(name)
  })

  await t.test('e2e and read: consumers get every entry; the bench deletes its logs', async t => {
    const before = new Set((await client.listLogs()).map(l => l.name))
    const e2e = await logctl('bench', 'e2e', ...md, '--duration', '2', '--rate', '300', '--consumers', '2', '--size', '64', '--json')
    t.equal(e2e.code, 0, e2e.stderr)
    const s = summaryOf(e2e)
    t.match(s, {mode: 'e2e', errors: 0, kept: false})
    t.ok(s.produced.entries >= 550 && s.produced.entries <= 601, `~300/s for 2 s: ${s.produced.entries}`)
    t.equal(s.consumed!.entries, 2 * s.produced.entries, 'two consumers of one log: each gets every entry')
    t.equal(s.entries, s.consumed!.entries, 'e2e: the headline is what consumers received')
    t.equal(s.latencyMs?.count, s.consumed!.entries)
    t.equal(s.produced.latencyMs?.count, s.produced.entries, 'and the append latency too')
    t.ok(s.latencyMs!.p50 >= s.produced.latencyMs!.min, 'an entry is received after it is sent')

    const read = await logctl('bench', 'read', ...md, '--entries', '3000', '--size', '256', '--json')
    t.equal(read.code, 0, read.stderr)
    const rs = summaryOf(read)
    t.match(rs, {mode: 'read', errors: 0, entries: 3000, bytes: 3000 * 256, produced: {entries: 3000}, consumed: {entries: 3000}})
    t.same((await client.listLogs()).map(l => l.name).filter(n => !before.has(n)), [], 'no log left behind')
  })

  await t.test('Ctrl-C prints the summary so far and still deletes the logs', async t => {
    const run = startBench('append', ...md, '--duration', '60', '--rate', '200', '--report-interval', '1', '--log', 'bint', '--json')
    await run.firstReport
    run.signal('SIGINT')
    const r = await run.done
    t.equal(r.code, 130, 'exit 130, as for any SIGINT')
    const s = summaryOf(r)
    t.match(s, {mode: 'append', interrupted: true, errors: 0})
    t.ok(s.entries >= 150 && s.seconds < 30, `${s.entries} entries in ${s.seconds} s`)
    t.notOk((await client.listLogs()).some(l => l.name === 'bint'), 'log deleted')
  })

  await t.test('fixed rate: a bookie stalled by SIGSTOP shows in p99/max; the run goes on by ensemble change', async t => {
    const rate = 200
    const seconds = 5
    const timeoutMs = 1000
    const run = startBench('append', ...md, '--rate', String(rate), '--duration', String(seconds), '--size', '128', '-e', '2', '-w', '2', '-a', '2',
      '--timeout-ms', String(timeoutMs), '--outstanding', '20', '--report-interval', '1', '--log', 'bstall', '--keep', '--json')
    await run.firstReport
    const seg = (await client.logs.get('bstall')).value.segments[0]!
    const victim = cluster.ids().indexOf((await client.ledgerInfo(seg.ledgerId)).ensembles[0]!.bookies[0]!)
    t.ok(victim >= 0, 'a bookie of the ensemble')
    cluster.bookie(victim).pause()
    await new Promise(resolve => setTimeout(resolve, 1500))
    cluster.bookie(victim).resume()
    const r = await run.done
    t.equal(r.code, 0, r.stderr)
    const s = summaryOf(r)
    t.match(s, {errors: 0, interrupted: false})
    t.ok(Math.abs(s.entries - rate * seconds) <= 1, `every scheduled entry was sent and acknowledged: ${s.entries}`)
    // Writes waited for the bookie until the client's timeout replaced it: >= 1000 ms from the intended send
    // time. Measured from the actual send, the entries held back by the full window (--outstanding 20) would
    // hide most of it.
    t.ok(s.latencyMs!.max >= timeoutMs, `max ${s.latencyMs!.max} ms >= ${timeoutMs} ms`)
    t.ok(s.latencyMs!.p99 >= 0.8 * timeoutMs, `p99 ${s.latencyMs!.p99} ms: the stall is in the tail, not one outlier`)
    const m = await client.ledgerInfo(seg.ledgerId)
    t.ok(m.ensembles.length >= 2, 'the stalled bookie was replaced')
    t.equal((await readBack(client, 'bstall')).entries, s.entries, 'the log holds every acknowledged entry')
    await client.deleteLog('bstall')
  })
})
