// Crash safety (invariant 1): a child adds entries as fast as it can and reports every acknowledged id;
// we SIGKILL it at random moments, many rounds. The reopened engine must hold every acknowledged entry
// byte for byte, and no entry that differs from what was sent.
import t from 'tap'
import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {StorageEngine} from '../../src/engine/engine.js'
import {ErrorCode} from '../../src/errors.js'
import {payloadFor, tempDir} from '../helpers/entries.js'
import {crashSize} from './fixtures/crash-sizes.js'

const child = fileURLToPath(new URL('./fixtures/crash-child.js', import.meta.url))

interface Round {
  acked: bigint[]
}

function runAndKill(dir: string, ledger: bigint, opts: object, killAfterMs: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(ledger), JSON.stringify(opts)], {stdio: ['ignore', 'pipe', 'inherit']})
    const acked: bigint[] = []
    let buf = ''
    let timer: NodeJS.Timeout | undefined
    p.stdout.setEncoding('utf8')
    p.stdout.on('data', (d: string) => {
      buf += d
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) {
        if (l === 'ready') timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs)
        else acked.push(BigInt(l))
      }
    })
    p.on('error', reject)
    p.on('exit', () => {
      clearTimeout(timer)
      resolve({acked})
    })
  })
}

const configs = [
  {name: 'preallocated segments, frequent checkpoints and rolls', opts: {maxSegmentBytes: 1024 * 1024, preallocBytes: 256 * 1024, checkpointBytes: 512 * 1024}},
  {name: 'plain appends', opts: {maxSegmentBytes: 2 * 1024 * 1024, preallocBytes: 0, checkpointBytes: 4 * 1024 * 1024}},
]

for (const cfg of configs) {
  t.test(`SIGKILL during adds loses nothing acknowledged (${cfg.name})`, async t => {
    const dir = tempDir(t)
    const rounds = 6
    const all = new Map<bigint, bigint[]>()
    let total = 0
    for (let r = 1; r <= rounds; r++) {
      const ledger = BigInt(r)
      const {acked} = await runAndKill(dir, ledger, cfg.opts, 80 + Math.floor(Math.random() * 400))
      all.set(ledger, acked)
      total += acked.length
      const e = await StorageEngine.open({dir, compactIntervalMs: 0, writeCacheBytes: 0, ...cfg.opts})
      try {
        // This round's ledger every round; all of them after the last round (earlier rounds' ledgers
        // must survive the later crashes and replays too).
        for (const [l, ids] of r === rounds ? all : new Map([[ledger, acked]])) {
          for (const id of ids) {
            const got = await e.read(l, id)
            if (!got.payload.equals(payloadFor(l, id, crashSize(id)))) t.fail(`entry ${l}/${id} differs`)
          }
          // Everything present (acknowledged or not) must be exactly what was sent.
          let n = 0
          const info = e.ledger(l)
          for (let id = 0n; id <= info.lastEntryId; id++) {
            try {
              const got = await e.read(l, id)
              if (!got.payload.equals(payloadFor(l, id, crashSize(id)))) t.fail(`unacknowledged entry ${l}/${id} differs`)
              n++
            } catch (err) {
              if ((err as {code?: string}).code !== ErrorCode.NO_SUCH_ENTRY) throw err
            }
          }
          if (n < ids.length) t.fail(`ledger ${l}: ${n} entries present, ${ids.length} acknowledged`)
        }
        t.same(e.problems.filter(p => p.kind !== 'torn-tail'), [], `round ${r}: no corruption reported`)
      } finally {
        await e.close()
      }
    }
    t.ok(total > rounds * 50, `acknowledged ${total} entries over ${rounds} kills`)
  })
}
