import t from 'tap'
import {readFileSync} from 'node:fs'
import {ErrorCode, EXIT_CODES, LogError, WIRE_STATUS, fromJSON, fromSystemError, isLogError} from '../src/errors.js'

// What this guards: docs/errors.md lists exactly the codes the code defines, each with its wire status and exit code.
t.test('docs/errors.md lists every code with its HTTP status and exit code', async t => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const rows = new Map<string, {status: number; exit: number}>()
  for (const m of doc.matchAll(/^\|\s*`(LOG_ERR_[A-Z_]+)`\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|/gm)) {
    rows.set(m[1]!, {status: Number(m[2]), exit: Number(m[3])})
  }
  const codes = Object.values(ErrorCode)
  t.same([...rows.keys()].sort(), [...codes].sort(), 'the same set of codes')
  for (const code of codes) {
    t.same(rows.get(code), {status: WIRE_STATUS[code], exit: EXIT_CODES[code]}, code)
  }
})

t.test('LogError round-trips through JSON and keeps its code', async t => {
  const e = new LogError(ErrorCode.FENCED, 'ledger 7 is fenced', {detail: {ledgerId: '7'}})
  const back = fromJSON(JSON.parse(JSON.stringify(e)))
  t.equal(back.code, ErrorCode.FENCED)
  t.equal(back.message, 'ledger 7 is fenced')
  t.same(back.detail, {ledgerId: '7'})
  t.ok(isLogError(back))
  t.equal(fromJSON({code: 'nonsense'}).code, ErrorCode.INTERNAL)
  t.equal(fromJSON(null).code, ErrorCode.INTERNAL)
  t.notOk(isLogError(new Error('x')))
})

t.test('system errors map to READ_ONLY on ENOSPC and IO otherwise', async t => {
  const full = Object.assign(new Error('no space'), {code: 'ENOSPC'})
  t.equal(fromSystemError(full, 'write').code, ErrorCode.READ_ONLY)
  t.equal(fromSystemError(full, 'write').retriable, true)
  const eio = Object.assign(new Error('io'), {code: 'EIO'})
  t.equal(fromSystemError(eio, 'write').code, ErrorCode.IO)
  const already = new LogError(ErrorCode.CORRUPT, 'x')
  t.equal(fromSystemError(already, 'write'), already)
})
