// The exit codes docs/errors.md documents that no other CLI test produces: 1 (unexpected failure),
// 9 (conflict) and 10 (timeout). Together with the other CLI tests every documented code is produced.
import t from 'tap'
import {Cluster} from '../helpers/cluster.js'
import {logctl} from './helpers.js'

t.test('exit 1 (unexpected), 9 (conflict), 10 (timeout)', async t => {
  const cluster = await Cluster.start(t, {bookies: 3})
  const md = ['--metadata', cluster.metadataUrl]
  const missing = await logctl('ledger', 'write', ...md, '--file', '/nonexistent/input.txt')
  t.equal(missing.code, 1, 'an unexpected failure (the input file is missing) exits 1')
  t.match(missing.stderr, /nonexistent/)

  t.equal((await logctl('create', 'twice', ...md)).code, 0)
  const again = await logctl('create', 'twice', ...md, '--json')
  t.equal(again.code, 9, 'a conflict exits 9')
  t.equal((JSON.parse(again.stdout) as {error: {code: string}}).error.code, 'LOG_ERR_LOG_EXISTS')

  // Every bookie hung: a read times out (exit 10) instead of claiming the entry does not exist.
  const w = await logctl('ledger', 'write', ...md, '--json', '--file', '/etc/hostname')
  const id = (JSON.parse(w.stdout) as {ledgerId: string}).ledgerId
  for (const b of cluster.bookies) b.pause()
  const hung = await logctl('ledger', 'read', id, ...md, '--timeout-ms', '500', '--json')
  for (const b of cluster.bookies) b.resume()
  t.equal(hung.code, 10, 'a timeout exits 10')
  t.equal((JSON.parse(hung.stdout) as {error: {code: string}}).error.code, 'LOG_ERR_TIMEOUT')
  t.equal((await logctl('ledger', 'read', id, ...md)).code, 0, 'fine again once the bookies resume')
})
