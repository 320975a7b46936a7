// `logctl ledger ...` and `logctl bookie list` run as a user runs them (subprocesses of the built CLI)
// against a real cluster of bookie daemons; every --json output parses; the documented exit codes for
// not found, fenced, not enough bookies, metadata unreachable and bad input are produced.
import t from 'tap'
import {spawn} from 'node:child_process'
import {createInterface} from 'node:readline'
import {Cluster} from '../helpers/cluster.js'
import {logctl, ROOT, logctlWithInput} from './helpers.js'


const lines = Array.from({length: 50}, (_, i) => `{"event":"order","id":${i},"note":"line ${i}"}`)

t.test('write, read, info, list, recover, delete; bookie list', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const w = await logctlWithInput(lines.join('\n') + '\n', 'ledger', 'write', ...md, '--json')
  t.equal(w.code, 0, w.stderr)
  const written = JSON.parse(w.stdout) as {ledgerId: string; entries: number; bytes: number; seconds: number}
  t.equal(written.entries, 50)
  t.equal(written.bytes, lines.reduce((n, l) => n + Buffer.byteLength(l), 0))
  t.match(written.ledgerId, /^\d+$/)
  const id = written.ledgerId

  const plain = await logctl('ledger', 'read', id, ...md)
  t.equal(plain.code, 0, plain.stderr)
  t.same(plain.stdout.trimEnd().split('\n'), lines, 'one entry per line, as written')
  const json = await logctl('ledger', 'read', id, ...md, '--json', '--from', '10', '--to', '12')
  t.same(json.stdout.trimEnd().split('\n').map(l => JSON.parse(l)), [10, 11, 12].map(i => ({entryId: String(i), size: Buffer.byteLength(lines[i]!), payload: lines[i]})))
  const b64 = await logctl('ledger', 'read', id, ...md, '--json', '--base64', '--from', '0', '--to', '0')
  t.equal(Buffer.from((JSON.parse(b64.stdout) as {payload: string}).payload, 'base64').toString(), lines[0])

  const info = await logctl('ledger', 'info', id, ...md, '--json')
  t.match(JSON.parse(info.stdout), {ledgerId: id, state: 'CLOSED', lastEntryId: '49', ensembleSize: 3, writeQuorum: 3, ackQuorum: 2})
  const list = await logctl('ledger', 'list', ...md, '--json')
  t.ok((JSON.parse(list.stdout) as {ledgers: Array<{ledgerId: string}>}).ledgers.some(l => l.ledgerId === id))
  const bookies = await logctl('bookie', 'list', ...md, '--json')
  const bl = (JSON.parse(bookies.stdout) as {bookies: Array<{status: string; address: string}>}).bookies
  t.equal(bl.length, 3)
  t.ok(bl.every(b => b.status === 'writable' && /^127\.0\.0\.1:\d+$/.test(b.address)))
  const table = await logctl('bookie', 'list', ...md)
  t.match(table.stdout, /^ID\s+ADDRESS\s+STATE/)

  const rec = await logctl('ledger', 'recover', id, ...md)
  t.equal(rec.stdout.trim(), '49', 'recovering a closed ledger changes nothing')
  const del = await logctl('ledger', 'delete', id, ...md, '--json')
  t.equal(del.code, 0, del.stderr)
  t.same(JSON.parse(del.stdout), {ledgerId: id, unreached: []})
  const gone = await logctl('ledger', 'info', id, ...md)
  t.equal(gone.code, 3, 'not found: exit 3')
  t.match(gone.stderr, /LOG_ERR_NO_SUCH_LEDGER/)
})

t.test('read --follow sees entries as they are written and ends when the ledger is closed', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const writer = spawn(process.execPath, ['bin/run.js', 'ledger', 'write', ...md, '-e', '2', '-w', '2', '-a', '2'], {cwd: ROOT})
  for (let i = 0; i < 10; i++) writer.stdin.write(`first ${i}\n`)
  // Find the open ledger, then follow it.
  let id = ''
  for (let i = 0; i < 100 && id === ''; i++) {
    const l = JSON.parse((await logctl('ledger', 'list', ...md, '--json')).stdout) as {ledgers: Array<{ledgerId: string}>}
    id = l.ledgers[0]?.ledgerId ?? ''
  }
  const follower = spawn(process.execPath, ['bin/run.js', 'ledger', 'read', id, ...md, '--follow'], {cwd: ROOT})
  const seen: string[] = []
  const followerDone = new Promise<number>(resolve => follower.on('exit', code => resolve(code ?? 1)))
  createInterface({input: follower.stdout}).on('line', l => seen.push(l))
  for (let i = 0; i < 10; i++) writer.stdin.write(`second ${i}\n`)
  writer.stdin.end()
  const [wcode, fcode] = await Promise.all([new Promise<number>(r => writer.on('exit', c => r(c ?? 1))), followerDone])
  t.equal(wcode, 0)
  t.equal(fcode, 0, 'the follower ended by itself once the ledger was closed')
  t.same(seen, [...Array.from({length: 10}, (_, i) => `first ${i}`), ...Array.from({length: 10}, (_, i) => `second ${i}`)])
})

t.test('exit codes: bad input 2, not found 3, fenced 4, not enough bookies 5, metadata unreachable 6', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const bad = await logctl('ledger', 'read', 'abc', ...md)
  t.equal(bad.code, 2)
  t.match(bad.stderr, /ledger id/)
  const badQ = await logctlWithInput('x\n', 'ledger', 'write', ...md, '-e', '2', '-w', '3')
  t.equal(badQ.code, 2)
  t.match(badQ.stderr, /ensemble >= write quorum >= ack quorum/)
  const notFound = await logctl('ledger', 'read', '987654', ...md, '--json')
  t.equal(notFound.code, 3)
  t.equal((JSON.parse(notFound.stdout) as {error: {code: string}}).error.code, 'LOG_ERR_NO_SUCH_LEDGER')
  const few = await logctlWithInput('x\n', 'ledger', 'write', ...md, '-e', '5', '-w', '3')
  t.equal(few.code, 5)
  t.match(few.stderr, /LOG_ERR_NOT_ENOUGH_BOOKIES/)
  const unreachable = await logctl('ledger', 'list', '--metadata', 'etcd://127.0.0.1:1', '--json')
  t.equal(unreachable.code, 6)
  t.equal((JSON.parse(unreachable.stdout) as {error: {code: string}}).error.code, 'LOG_ERR_METADATA_UNAVAILABLE')

  // Fenced: a `ledger write` still reading stdin loses its ledger to `ledger recover`.
  const writer = spawn(process.execPath, ['bin/run.js', 'ledger', 'write', ...md], {cwd: ROOT})
  let stderr = ''
  writer.stderr.on('data', d => { stderr += d })
  const exited = new Promise<number>(r => writer.on('exit', c => r(c ?? 1)))
  writer.stdin.write('before recovery\n')
  let id = ''
  for (let i = 0; i < 100 && id === ''; i++) {
    const l = JSON.parse((await logctl('ledger', 'list', ...md, '--json')).stdout) as {ledgers: Array<{ledgerId: string; state: string}>}
    id = l.ledgers.find(x => x.state === 'OPEN')?.ledgerId ?? ''
  }
  const rec = await logctl('ledger', 'recover', id, ...md, '--json')
  t.equal(rec.code, 0, rec.stderr)
  writer.stdin.write('after recovery\n')
  writer.stdin.end()
  t.equal(await exited, 4, 'fenced: exit 4')
  t.match(stderr, /LOG_ERR_FENCED/)
})
