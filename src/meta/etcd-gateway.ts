/**
 * A small client for etcd v3's JSON gateway (the grpc-gateway every etcd >= 3.4 serves on its client port),
 * over undici. docs/METADATA.md has the measurements that chose it over the `etcd3` gRPC package; in short it
 * was as fast or faster, and it lets us say exactly when a call is retried and how long it may take:
 *
 * - One deadline per call (timeoutMs) covers connecting, fail-over between hosts and reading the answer, so
 *   an unreachable or hung etcd gives METADATA_UNAVAILABLE after a bounded time, never a hang.
 * - Fail-over: a call moves to the next host when the request provably was not sent (connection refused,
 *   connect timeout, unknown host). Other failures move it only if the call is idempotent (reads, keepalive):
 *   a write whose answer was lost may have been applied, and a blind retry would turn a won CAS into a
 *   reported BAD_VERSION or allocate a second ledger id. Such writes report METADATA_UNAVAILABLE instead.
 *
 * Wire notes (proto3 JSON): bytes are base64, int64 are decimal strings, and fields at their default value
 * are omitted: `succeeded: false`, an empty `kvs`, a lease keepalive's `TTL: 0` (expired) all arrive as absent.
 */
import {Pool} from 'undici'
import {ErrorCode, LogError} from '../errors.js'

export interface KeyValue { key: Buffer; value: Buffer; modRevision: bigint }

export type Compare =
  | {key: Buffer; target: 'MOD' | 'CREATE'; result: 'EQUAL' | 'GREATER'; revision: bigint}

export type Op =
  | {put: {key: Buffer; value: Buffer; lease?: string}}
  | {range: {key: Buffer; end?: Buffer | undefined; limit?: number | undefined; keysOnly?: boolean}}
  | {deleteRange: {key: Buffer}}

export interface TxnResult {
  succeeded: boolean
  /** The store revision after the txn: the mod revision of everything it wrote. */
  revision: bigint
  /** One per op of the branch taken; `kvs` for ranges (empty for puts and deletes). */
  responses: Array<{kvs: KeyValue[]}>
}

/** gRPC status NOT_FOUND, which etcd uses for "requested lease not found". */
export const GRPC_NOT_FOUND = 5
const GRPC_INVALID_ARGUMENT = 3
const GRPC_UNAVAILABLE = 14

/** Errors that mean the request never left this process, so any host may take it again. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

const b64 = (b: Buffer): string => b.toString('base64')

export class EtcdGateway {
  readonly #pools: Pool[]
  readonly #hosts: string[]
  #current = 0

  constructor(hosts: string[], private readonly timeoutMs: number) {
    this.#hosts = hosts
    this.#pools = hosts.map(h => new Pool(`http://${h}`, {
      connections: 16,
      connect: {timeout: timeoutMs},
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    }))
  }

  async range(key: Buffer, opts: {end?: Buffer | undefined; limit?: number | undefined; keysOnly?: boolean} = {}): Promise<KeyValue[]> {
    const res = await this.#call('/v3/kv/range', rangeBody({key, ...opts}), true)
    return kvs(res['kvs'])
  }

  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const idempotent = [...success, ...failure].every(op => 'range' in op)
    const res = await this.#call('/v3/kv/txn', {compare: compare.map(compareBody), success: success.map(opBody), failure: failure.map(opBody)}, idempotent)
    const responses = Array.isArray(res['responses']) ? res['responses'] as Array<Record<string, Record<string, unknown>>> : []
    return {
      succeeded: res['succeeded'] === true,
      revision: headerRevision(res),
      responses: responses.map(r => ({kvs: kvs(r['response_range']?.['kvs'])})),
    }
  }

  async leaseGrant(ttlSeconds: number): Promise<string> {
    const res = await this.#call('/v3/lease/grant', {TTL: String(ttlSeconds)}, false)
    if (typeof res['ID'] !== 'string') throw unavailable(`etcd granted no lease: ${String(res['error'] ?? '')}`)
    return res['ID']
  }

  /** false when the lease has expired (etcd then answers with no TTL). */
  async leaseKeepAlive(id: string): Promise<boolean> {
    const res = await this.#call('/v3/lease/keepalive', {ID: id}, true)
    const ttl = (res['result'] as {TTL?: string} | undefined)?.TTL
    return ttl !== undefined && ttl !== '0'
  }

  /** Revoking a lease deletes every key attached to it. An unknown (already expired) lease is not an error. */
  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.#call('/v3/lease/revoke', {ID: id}, true)
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#pools.map(p => p.destroy()))
  }

  async #call(path: string, body: unknown, idempotent: boolean): Promise<Record<string, unknown>> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    const payload = JSON.stringify(body)
    let lastError: unknown
    // Each host gets at most two tries: a quick refusal from every host ends the call without spinning.
    for (let attempt = 0; attempt < this.#pools.length * 2 && !signal.aborted; attempt++) {
      const index = this.#current
      try {
        const res = await this.#pools[index]!.request({method: 'POST', path, body: payload, headers: {'content-type': 'application/json'}, signal})
        const text = await res.body.text()
        if (res.statusCode === 200) return JSON.parse(text) as Record<string, unknown>
        const failure = statusError(path, this.#hosts[index]!, res.statusCode, text)
        // UNAVAILABLE ("no leader", member stopping): the request was refused, not applied; another member may serve it.
        if ((failure.detail['grpcCode'] !== GRPC_UNAVAILABLE) || !idempotent) throw failure
        lastError = failure
      } catch (err) {
        if (err instanceof LogError) throw err
        lastError = err
        if (signal.aborted) break
        const code = (err as {code?: unknown}).code
        if (!idempotent && !NOT_SENT.has(String(code))) {
          throw unavailable(`etcd ${this.#hosts[index]} failed during ${path}; the write may or may not have been applied: ${describe(err)}`, err)
        }
      }
      this.#current = (index + 1) % this.#pools.length
    }
    if (signal.aborted) {
      throw unavailable(`no answer from etcd (${this.#hosts.join(',')}) within ${this.timeoutMs} ms for ${path}${lastError === undefined ? '' : `: ${describe(lastError)}`}`, lastError)
    }
    throw unavailable(`cannot reach etcd at ${this.#hosts.join(',')} (${path}): ${describe(lastError)}`, lastError)
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof LogError && err.detail['grpcCode'] === GRPC_NOT_FOUND
}

function unavailable(message: string, cause?: unknown): LogError {
  return new LogError(ErrorCode.METADATA_UNAVAILABLE, message, cause === undefined ? {} : {cause})
}

function describe(err: unknown): string {
  const e = err as {code?: unknown; message?: unknown}
  return `${String(e?.message ?? err)}${typeof e?.code === 'string' ? ` (${e.code})` : ''}`
}

/** etcd's error body: {"error": "...", "message": "...", "code": <gRPC status>}. */
function statusError(path: string, host: string, status: number, text: string): LogError {
  let grpcCode: number | undefined
  let message = text.trim().slice(0, 300)
  try {
    const body = JSON.parse(text) as {code?: unknown; message?: unknown}
    if (typeof body.code === 'number') grpcCode = body.code
    if (typeof body.message === 'string') message = body.message
  } catch {
    // not JSON (e.g. a proxy's error page): keep the text
  }
  const detail = {host, path, httpStatus: status, grpcCode}
  // INVALID_ARGUMENT covers "request is too large" and similar: the caller's request, not etcd's health.
  if (grpcCode === GRPC_INVALID_ARGUMENT) return new LogError(ErrorCode.BAD_INPUT, `etcd refused ${path}: ${message}`, {detail})
  return new LogError(ErrorCode.METADATA_UNAVAILABLE, `etcd ${host} answered ${status} to ${path}: ${message}`, {detail})
}

function headerRevision(res: Record<string, unknown>): bigint {
  const rev = (res['header'] as {revision?: unknown} | undefined)?.revision
  return typeof rev === 'string' ? BigInt(rev) : 0n
}

function kvs(list: unknown): KeyValue[] {
  if (!Array.isArray(list)) return []
  return list.map((kv: Record<string, unknown>) => ({
    key: Buffer.from(String(kv['key'] ?? ''), 'base64'),
    value: Buffer.from(String(kv['value'] ?? ''), 'base64'),
    modRevision: BigInt(String(kv['mod_revision'] ?? '0')),
  }))
}

function rangeBody(r: {key: Buffer; end?: Buffer | undefined; limit?: number | undefined; keysOnly?: boolean}): Record<string, unknown> {
  return {
    key: b64(r.key),
    ...(r.end === undefined ? {} : {range_end: b64(r.end)}),
    ...(r.limit === undefined ? {} : {limit: String(r.limit)}),
    ...(r.keysOnly === true ? {keys_only: true} : {}),
  }
}

function compareBody(c: Compare): Record<string, unknown> {
  return {key: b64(c.key), target: c.target, result: c.result, [c.target === 'MOD' ? 'mod_revision' : 'create_revision']: c.revision.toString()}
}

function opBody(op: Op): Record<string, unknown> {
  if ('put' in op) return {request_put: {key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease === undefined ? {} : {lease: op.put.lease})}}
  if ('range' in op) return {request_range: rangeBody(op.range)}
  return {request_delete_range: {key: b64(op.deleteRange.key)}}
}
