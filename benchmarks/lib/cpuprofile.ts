/**
 * Summarise V8 .cpuprofile files (from `node --cpu-prof --cpu-prof-dir=DIR ...`): self time per function
 * and per file, optionally inclusive ("total") time of functions matching a pattern.
 *
 *   node dist/benchmarks/lib/cpuprofile.js FILE.cpuprofile [...] [--top 25] [--total PATTERN]
 *
 * One profile per thread (main, workers): pass the one you want, or several to add them up. Percentages
 * are of the samples of the profiles given (the whole lifetime of the process, start-up and idle included).
 */
import {readFileSync} from 'node:fs'
import {basename} from 'node:path'
import {parseArgs} from 'node:util'

interface Node { id: number; callFrame: {functionName: string; url: string; lineNumber: number; columnNumber: number}; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface Summary {
  totalMs: number
  byFunction: Array<{name: string; ms: number; pct: number}>
  byFile: Array<{file: string; ms: number; pct: number}>
  inclusive: Array<{name: string; ms: number; pct: number}>
}

const short = (url: string): string => {
  if (!url) return '(native/vm)'
  const u = url.replace(/^file:\/\//, '')
  const i = u.indexOf('/dist/')
  if (i >= 0) return u.slice(i + 1)
  const n = u.indexOf('/node_modules/')
  if (n >= 0) return u.slice(n + 1)
  return u.startsWith('node:') ? u : basename(u)
}

export function summarise(files: string[], totalPattern?: RegExp): Summary {
  const fn = new Map<string, number>()
  const file = new Map<string, number>()
  const incl = new Map<string, number>()
  let total = 0
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as Profile
    const byId = new Map(p.nodes.map(n => [n.id, n]))
    const parent = new Map<number, number>()
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    const self = new Map<number, number>()
    p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)))
    for (const [id, us] of self) {
      const n = byId.get(id)!
      const cf = n.callFrame
      const name = `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`
      fn.set(name, (fn.get(name) ?? 0) + us)
      const key = cf.url ? short(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(native/vm)'
      file.set(key, (file.get(key) ?? 0) + us)
      total += us
      if (totalPattern) {
        // inclusive: charge every distinct matching ancestor (incl. itself) once
        const seen = new Set<string>()
        for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
          const c = byId.get(cur)!.callFrame
          const nm = `${c.functionName || '(anonymous)'} ${short(c.url)}:${c.lineNumber + 1}`
          if (totalPattern.test(nm) && !seen.has(nm)) {
            seen.add(nm)
            incl.set(nm, (incl.get(nm) ?? 0) + us)
          }
        }
      }
    }
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1])
  return {
    totalMs: total / 1000,
    byFunction: sorted(fn).map(([name, us]) => ({name, ms: us / 1000, pct: (us / total) * 100})),
    byFile: sorted(file).map(([f, us]) => ({file: f, ms: us / 1000, pct: (us / total) * 100})),
    inclusive: sorted(incl).map(([name, us]) => ({name, ms: us / 1000, pct: (us / total) * 100})),
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))
if (isMain) {
  const {values, positionals} = parseArgs({allowPositionals: true, options: {top: {type: 'string', default: '25'}, total: {type: 'string'}}})
  const top = Number(values.top)
  const s = summarise(positionals, values.total ? new RegExp(values.total) : undefined)
  console.log(`${positionals.length} profile(s), ${s.totalMs.toFixed(0)} ms sampled`)
  console.log('\nself time by function:')
  for (const r of s.byFunction.slice(0, top)) console.log(`${r.pct.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`)
  console.log('\nself time by file:')
  for (const r of s.byFile.slice(0, top)) console.log(`${r.pct.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.file}`)
  if (values.total) {
    console.log(`\ninclusive time of functions matching ${values.total}:`)
    for (const r of s.inclusive.slice(0, top)) console.log(`${r.pct.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`)
  }
}
