import t from 'tap'
import {ErrorCode, LogError} from '../../src/errors.js'
import {ByteBudget} from '../../src/net/byte-budget.js'

t.test('bytes in flight stay under the limit, waiters go in order, a lone oversized request still goes', async t => {
  const b = new ByteBudget(100)
  const never = new AbortController().signal
  await b.acquire(60, never)
  const order: string[] = []
  const big = b.acquire(50, never).then(() => order.push('big'))
  const small = b.acquire(10, never).then(() => order.push('small')) // fits, but waits behind `big` (FIFO)
  await Promise.resolve()
  t.same(order, [], 'nothing fits yet in FIFO order')
  b.release(60)
  await Promise.all([big, small])
  t.same(order, ['big', 'small'])
  t.equal(b.inFlight, 60)
  b.release(50)
  b.release(10)
  await b.acquire(500, never)
  t.equal(b.inFlight, 500, 'larger than the whole budget: goes alone')
  b.release(500)
})

t.test('a waiter whose signal aborts leaves the queue with the reason, and the next one may go', async t => {
  const b = new ByteBudget(100)
  const never = new AbortController().signal
  await b.acquire(90, never)
  const ac = new AbortController()
  const waiting = b.acquire(50, ac.signal)
  const behind = b.acquire(10, never)
  const reason = new LogError(ErrorCode.TIMEOUT, 'too slow')
  ac.abort(reason)
  await t.rejects(waiting, reason)
  await behind
  t.equal(b.inFlight, 100, 'the one behind went once the aborted one left')
  const gone = new AbortController()
  gone.abort(reason)
  await t.rejects(b.acquire(5, gone.signal), reason, 'an aborted signal is refused at once when it would wait')
})
