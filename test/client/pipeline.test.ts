// What broke: `append` and `ledger write` started an append per input line without waiting, so a fast
// producer (tail -F) grew memory without bound. The pipeline keeps at most `limit` outstanding.
import t from 'tap'
import {Pipeline} from '../../src/client/pipeline.js'

t.test('never more than `limit` outstanding; results in order; the first failure surfaces', async t => {
  let outstanding = 0
  let peak = 0
  const seen: number[] = []
  const pipe = new Pipeline<number>(8, v => seen.push(v))
  for (let i = 0; i < 200; i++) {
    await pipe.push(async () => {
      outstanding++
      peak = Math.max(peak, outstanding)
      await new Promise(resolve => setImmediate(resolve))
      outstanding--
      return i
    })
    t.ok(outstanding < 8 || i < 8, 'room was made before returning')
  }
  await pipe.drain()
  t.equal(peak, 8)
  t.same(seen, Array.from({length: 200}, (_, i) => i))

  const failing = new Pipeline<number>(2)
  await failing.push(async () => 1)
  await t.rejects((async () => {
    await failing.push(async () => { throw new Error('boom') })
    await failing.push(async () => 3)
    await failing.drain()
  })(), {message: 'boom'})
  await t.rejects(failing.push(async () => 4), {message: 'boom'}, 'stays failed')
})
