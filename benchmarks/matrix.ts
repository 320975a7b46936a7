/**
 * The standard `logctl bench` matrix, with the disk's limit measured in the same run, written to
 * docs/BENCHMARKS.md (its table, between the `<!-- matrix:start -->` / `<!-- matrix:end -->` markers, replaced
 * on every run) and docs/BENCH-MATRIX.svg (throughput against p99 latency).
 *
 *   npx tsc -b && node dist/benchmarks/matrix.js [--quick] [--seconds S] [--warmup S] [--dir D] [--json]
 *        [--out docs/BENCHMARKS.md] [--sizes 100,1024,16384] [--bookies 1,3]
 *
 * 1. Machine line (CPU, cores, Node, device and file system of the data dir, load, date).
 * 2. The raw-disk baseline: 1 KiB records, 512 per fs.writevSync, each batch followed by fdatasync,
 *    appending to a fresh file (benchmarks/lib/baselines.ts, the definition benchmarks/engine.ts uses).
 * 3. For one bookie (E=Qw=Qa=1) and three bookies (E=3 Qw=3 Qa=2), each a `logctl daemon` child process
 *    on 127.0.0.1 with its data under the run's directory: for 100 B, 1 KiB and 16 KiB entries, first
 *    `logctl bench append --rate 0` (as fast as 1000 appends in flight allow), then the same at fixed
 *    rates of 25, 50 and 75 % of that throughput (--quick: 50 %), which draws the latency curve. Every cell
 *    is a fresh `logctl bench` process (one producer, random payloads) with a warm-up, and its --json
 *    summary is what the table shows. At a fixed rate, latency counts from each entry's intended send
 *    time, so a cell that cannot keep up shows it in p99.
 *
 * Everything runs on one machine and one disk, one cell at a time; the directory (under os.tmpdir(), or
 * the current directory if that is a RAM file system, or --dir) is removed at the end. Default run:
 * about 2-3 minutes; --quick: about 35 s.
 */
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import type {BenchSummary} from '../src/bench/summary.js'
import {rawAppend, type RawAppendResult} from './lib/baselines.js'
import {Bookies} from './lib/bookies.js'
import {BASE_FLAGS, log, machineInfo, machineLine, pickDir, settle} from './lib/machine.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MiB = 1024 * 1024

const {values: flags} = parseArgs({
  options: {
    ...BASE_FLAGS,
    warmup: {type: 'string'},
    dir: {type: 'string'},
    out: {type: 'string'},
    sizes: {type: 'string'},
    bookies: {type: 'string'},
  },
})

const QUICK = flags.quick === true
const list = (s: string | undefined, dflt: number[]): number[] => (s ? s.split(',').map(x => Number(x.trim())) : dflt)
const CFG = {
  cellSeconds: Number(flags.seconds ?? (QUICK ? 1.5 : 3)),
  warmupSeconds: Number(flags.warmup ?? (QUICK ? 0.5 : 1)),
  rawSeconds: QUICK ? 1 : 3,
  sizes: list(flags.sizes, [100, 1024, 16384]),
  bookies: list(flags.bookies, [1, 3]),
  fractions: QUICK ? [0.5] : [0.25, 0.5, 0.75],
  out: flags.out ?? join(ROOT, 'docs', 'BENCHMARKS.md'),
}
if (!(CFG.cellSeconds > 0) || !(CFG.warmupSeconds >= 0)) throw new Error('--seconds must be > 0 and --warmup >= 0')
if (CFG.sizes.some(s => !Number.isInteger(s) || s < 16 || s > 1024 * 1024)) throw new Error('--sizes: integers in 16..1048576')
if (CFG.bookies.some(n => n !== 1 && n !== 3)) throw new Error('--bookies: 1 and/or 3')

interface Cell {
  bookies: number
  quorum: string
  size: number
  /** Offered rate (entries/s); 0 = as fast as possible. */
  rate: number
  summary: BenchSummary
}

const quorumFor = (n: number): [number, number, number] => (n === 1 ? [1, 1, 1] : [3, 3, 2])
const fmtSize = (n: number): string => (n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`)
const fmtMs = (v: number | undefined): string => (v === undefined ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1))
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US')
const errors = (s: BenchSummary): string => (s.errors === 0 ? '0' : `${s.errors} (${Object.entries(s.errorsByCode).map(([k, v]) => `${k} ${v}`).join(', ')})`)

/** One `logctl bench append` process; its --json summary. Its report lines are passed on to stderr. */
function benchCell(metadata: string, bookies: number, size: number, rate: number): Promise<BenchSummary> {
  const [e, w, a] = quorumFor(bookies)
  const args = ['bin/run.js', 'bench', 'append', '--metadata', metadata, '--size', String(size), '--rate', String(rate),
    '--duration', String(CFG.cellSeconds), '--warmup', String(CFG.warmupSeconds), '-e', String(e), '-w', String(w), '-a', String(a),
    '--report-interval', String(Math.max(1, CFG.cellSeconds)), '--json']
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => process.stderr.write(String(d).replace(/^(?=.)/gm, '    ')))
    p.on('close', code => {
      try {
        const s = JSON.parse(out) as BenchSummary & {error?: unknown}
        if (code !== 0 || s.error) throw new Error(`exit ${code}: ${out}`)
        resolve(s)
      } catch (err) {
        reject(new Error(`logctl ${args.slice(1).join(' ')} failed: ${(err as Error).message}`))
      }
    })
  })
}

// ---- the chart ------------------------------------------------------------------------------------------

const COLORS: Record<number, string> = {100: '#1f77b4', 1024: '#d62728', 16384: '#2ca02c'}
const color = (size: number): string => COLORS[size] ?? '#7f7f7f'

/** Decade ticks 1-2-5 between lo and hi (both > 0). */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (v >= lo && v <= hi) out.push(v)
    }
  }
  return out
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const tickLabel = (v: number): string => (v >= 1000 ? `${v / 1000}k` : v >= 1 ? String(v) : String(Number(v.toPrecision(1))))

/** Throughput (MiB/s, log) against p99 latency (ms, log); one line per (bookies, size); raw disk as a rule. */
function svgChart(cells: Cell[], rawMiBps: number | undefined): string {
  const W = 760
  const H = 460
  const m = {left: 70, right: 190, top: 40, bottom: 55}
  const pts = cells.filter(c => c.summary.latencyMs !== null && c.summary.mbPerSec > 0)
  const xs = pts.map(c => c.summary.mbPerSec).concat(rawMiBps === undefined ? [] : [rawMiBps])
  const ys = pts.map(c => c.summary.latencyMs!.p99)
  if (pts.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no data</text></svg>\n`
  const [x0, x1] = [10 ** Math.floor(Math.log10(Math.min(...xs))), 10 ** Math.ceil(Math.log10(Math.max(...xs)))]
  const [y0, y1] = [10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ys)))), 10 ** Math.ceil(Math.log10(Math.max(...ys)))]
  const px = (v: number): number => m.left + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - m.left - m.right)
  const py = (v: number): number => H - m.bottom - ((Math.log10(Math.max(v, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (H - m.top - m.bottom)
  const f = (n: number): string => n.toFixed(1)
  const o: string[] = []
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  o.push(`<text x="${W / 2 - 60}" y="22" text-anchor="middle" font-size="15">logctl bench append: throughput vs p99 latency</text>`)
  for (const v of ticks(x0, x1)) {
    o.push(`<line x1="${f(px(v))}" y1="${m.top}" x2="${f(px(v))}" y2="${H - m.bottom}" stroke="#e5e5e5"/>`)
    o.push(`<text x="${f(px(v))}" y="${H - m.bottom + 16}" text-anchor="middle">${tickLabel(v)}</text>`)
  }
  for (const v of ticks(y0, y1)) {
    o.push(`<line x1="${m.left}" y1="${f(py(v))}" x2="${W - m.right}" y2="${f(py(v))}" stroke="#e5e5e5"/>`)
    o.push(`<text x="${m.left - 6}" y="${f(py(v) + 4)}" text-anchor="end">${tickLabel(v)}</text>`)
  }
  o.push(`<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}" fill="none" stroke="#333"/>`)
  o.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 14}" text-anchor="middle">throughput, MiB/s (log)</text>`)
  o.push(`<text transform="translate(18 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log)</text>`)
  if (rawMiBps !== undefined) {
    o.push(`<line x1="${f(px(rawMiBps))}" y1="${m.top}" x2="${f(px(rawMiBps))}" y2="${H - m.bottom}" stroke="#555" stroke-dasharray="6 4"/>`)
    o.push(`<text x="${f(px(rawMiBps) - 4)}" y="${m.top + 14}" text-anchor="end" fill="#555">raw disk ${rawMiBps.toFixed(1)} MiB/s</text>`)
  }
  let legendY = m.top + 8
  for (const bookies of [...new Set(pts.map(c => c.bookies))]) {
    for (const size of [...new Set(pts.map(c => c.size))]) {
      const series = pts.filter(c => c.bookies === bookies && c.size === size).sort((a, b) => a.summary.mbPerSec - b.summary.mbPerSec)
      if (series.length === 0) continue
      const dash = bookies === 1 ? '' : ' stroke-dasharray="5 3"'
      o.push(`<polyline fill="none" stroke="${color(size)}" stroke-width="1.8"${dash} points="${series.map(c => `${f(px(c.summary.mbPerSec))},${f(py(c.summary.latencyMs!.p99))}`).join(' ')}"/>`)
      for (const c of series) {
        const [x, y] = [px(c.summary.mbPerSec), py(c.summary.latencyMs!.p99)]
        const tip = `<title>${esc(`${bookies} bookie(s), ${fmtSize(size)}, ${c.rate === 0 ? 'max' : `${c.rate}/s offered`}: ${fmtInt(c.summary.entriesPerSec)} entries/s, ${c.summary.mbPerSec.toFixed(2)} MiB/s, p99 ${fmtMs(c.summary.latencyMs!.p99)} ms`)}</title>`
        o.push(bookies === 1
          ? `<circle cx="${f(x)}" cy="${f(y)}" r="4" fill="${color(size)}">${tip}</circle>`
          : `<rect x="${f(x - 4)}" y="${f(y - 4)}" width="8" height="8" fill="white" stroke="${color(size)}" stroke-width="1.8">${tip}</rect>`)
      }
      const lx = W - m.right + 14
      o.push(`<line x1="${lx}" y1="${legendY}" x2="${lx + 26}" y2="${legendY}" stroke="${color(size)}" stroke-width="1.8"${dash}/>`)
      o.push(bookies === 1 ? `<circle cx="${lx + 13}" cy="${legendY}" r="4" fill="${color(size)}"/>` : `<rect x="${lx + 9}" y="${legendY - 4}" width="8" height="8" fill="white" stroke="${color(size)}" stroke-width="1.8"/>`)
      o.push(`<text x="${lx + 34}" y="${legendY + 4}">${bookies} bookie${bookies === 1 ? '' : 's'}, ${fmtSize(size)}</text>`)
      legendY += 20
    }
  }
  o.push(`<text x="${W - m.right + 14}" y="${legendY + 10}" fill="#555" font-size="11">points: ${CFG.fractions.map(x => x * 100).join('/')} % of max, and max</text>`)
  o.push('</svg>')
  return o.join('\n') + '\n'
}

// ---- the report -----------------------------------------------------------------------------------------

function markdown(cells: Cell[], raw: RawAppendResult | undefined, rawMiBps: number | undefined, machine: string, svgName: string, seconds: number): string {
  const o: string[] = []
  o.push('## `logctl bench` matrix (`benchmarks/matrix.ts`)')
  o.push('')
  o.push(`Written by \`benchmarks/matrix.ts\`${QUICK ? ' (`--quick`)' : ''} in ${seconds.toFixed(0)} s; docs/BENCH.md says how the bench measures. Every cell`)
  o.push(`is one \`logctl bench append\` process (one producer, random payloads, ${CFG.warmupSeconds} s warm-up, ${CFG.cellSeconds} s measured). "max" is`)
  o.push('`--rate 0` (1000 appends in flight); the fixed rates are fractions of that cell\'s throughput, and their latency')
  o.push('counts from each entry\'s intended send time. MiB = 2^20 bytes. Figures from one shared machine: compare')
  o.push('cells of one run (and each with the raw disk of the same run), not runs.')
  o.push('')
  o.push(machine)
  o.push('')
  if (raw && rawMiBps !== undefined) {
    o.push(`**Raw disk** (same run, same disk): 512 x 1 KiB records per \`writev\` + \`fdatasync\`, appending, ${raw.seconds.toFixed(1)} s: `
      + `${fmtInt(raw.recordsPerSec)} records/s = ${rawMiBps.toFixed(1)} MiB/s, fdatasync p50 ${(raw.syncUs.p50 / 1000).toFixed(2)} ms, p99 ${(raw.syncUs.p99 / 1000).toFixed(2)} ms.`)
    o.push('')
  }
  o.push(`![throughput against p99 latency](${svgName})`)
  o.push('')
  o.push('| bookies | E/Qw/Qa | size | offered | entries/s | MiB/s | of raw disk | avg ms | p50 ms | p99 ms | p99.9 ms | max ms | errors |')
  o.push('|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const c of cells) {
    const s = c.summary
    const l = s.latencyMs ?? undefined
    const ofRaw = rawMiBps ? `${((s.mbPerSec / rawMiBps) * 100).toFixed(0)} %` : 'n/a'
    o.push(`| ${c.bookies} | ${c.quorum} | ${fmtSize(c.size)} | ${c.rate === 0 ? 'max' : `${fmtInt(c.rate)}/s`} | ${fmtInt(s.entriesPerSec)} | ${s.mbPerSec.toFixed(2)} | ${ofRaw} | `
      + `${fmtMs(l?.avg)} | ${fmtMs(l?.p50)} | ${fmtMs(l?.p99)} | ${fmtMs(l?.p999)} | ${fmtMs(l?.max)} | ${errors(s)} |`)
  }
  o.push('')
  o.push('"of raw disk": the cell\'s payload MiB/s over the raw disk\'s. With three bookies on one machine every entry')
  o.push('is written three times to the same disk, by three processes sharing the same cores as the client.')
  o.push('')
  return o.join('\n')
}

async function main(): Promise<void> {
  const started = Date.now()
  const {root, mount} = pickDir('logctl-bench-matrix-', flags.dir)
  const cells: Cell[] = []
  let bookies: Bookies | undefined
  const cleanup = (): void => { rmSync(root, {recursive: true, force: true}) }
  process.once('SIGINT', () => { cleanup(); process.exit(130) })
  try {
    const machine = machineLine(machineInfo(mount), root)
    log(machine)
    log('raw disk: 512 x 1 KiB writev + fdatasync ...')
    await settle(0)
    const raw = await rawAppend(root, {seconds: CFG.rawSeconds})
    const rawMiBps = (raw.records * 1024) / raw.seconds / MiB
    log(`  ${fmtInt(raw.recordsPerSec)} records/s = ${rawMiBps.toFixed(1)} MiB/s`)
    for (const n of CFG.bookies) {
      log(`starting ${n} bookie(s) ...`)
      bookies = await Bookies.start({dir: join(root, `cluster-${n}`), count: n})
      const [e, w, a] = quorumFor(n)
      for (const size of CFG.sizes) {
        await settle(0)
        log(`${n} bookie(s), ${fmtSize(size)}: as fast as possible ...`)
        const max = await benchCell(bookies.metadataUrl, n, size, 0)
        cells.push({bookies: n, quorum: `${e}/${w}/${a}`, size, rate: 0, summary: max})
        for (const frac of CFG.fractions) {
          const rate = Math.max(1, Math.round(max.entriesPerSec * frac))
          await settle(0)
          log(`${n} bookie(s), ${fmtSize(size)}: ${rate}/s (${frac * 100} % of max) ...`)
          cells.push({bookies: n, quorum: `${e}/${w}/${a}`, size, rate, summary: await benchCell(bookies.metadataUrl, n, size, rate)})
        }
      }
      await bookies.stop()
      bookies = undefined
    }
    const order = (c: Cell): number => c.bookies * 1e9 + c.size * 1e3 + (c.rate === 0 ? 999 : c.rate / (c.summary.entriesPerSec || 1))
    cells.sort((x, y) => order(x) - order(y))
    const svgPath = join(dirname(CFG.out), 'BENCH-MATRIX.svg')
    mkdirSync(dirname(CFG.out), {recursive: true})
    writeFileSync(svgPath, svgChart(cells, rawMiBps))
    writeSection(CFG.out, markdown(cells, raw, rawMiBps, machine, relative(dirname(CFG.out), svgPath), (Date.now() - started) / 1000))
    log(`wrote ${CFG.out} and ${svgPath}`)
    if (flags.json) process.stdout.write(JSON.stringify({machine, raw, cells}, null, 2) + '\n')
    else process.stdout.write(markdown(cells, raw, rawMiBps, machine, relative(dirname(CFG.out), svgPath), (Date.now() - started) / 1000))
  } finally {
    await bookies?.stop()
    cleanup()
  }
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})

/** Put the matrix section into `file` between its markers (replacing the last run), or append it. */
function writeSection(file: string, section: string): void {
  const start = '<!-- matrix:start -->'
  const end = '<!-- matrix:end -->'
  const block = `${start}\n${section.trimEnd()}\n${end}`
  const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  writeFileSync(file, i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`)
}
