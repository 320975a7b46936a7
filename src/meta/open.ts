/**
 * openMetadataStore: the one entry point that turns a metadata URL into a store.
 *
 *   sqlite:/abs/path/meta.db   sqlite:relative/path.db   sqlite:///abs/path.db
 *   etcd://host:port[,host:port...][/key/prefix]          (prefix default /logctl/)
 *
 * The drivers are loaded on demand: a `logctl` talking to etcd never loads SQLite's native module, and one
 * using SQLite never loads undici's pools for etcd. This file is apart from store.ts because it imports the
 * drivers, which import store.ts's types: keeping it separate keeps the import graph acyclic.
 */
import {resolve} from 'node:path'
import {ErrorCode, LogError} from '../errors.js'
import type {MetadataStore, OpenOptions} from './store.js'

export const DEFAULT_ETCD_PREFIX = '/logctl/'
const MAX_TIMEOUT_MS = 600_000

export type ParsedUrl =
  | {driver: 'sqlite'; path: string; url: string}
  | {driver: 'etcd'; hosts: string[]; prefix: string; url: string}

function bad(url: string, why: string): LogError {
  return new LogError(ErrorCode.BAD_INPUT, `bad metadata store URL ${JSON.stringify(url)}: ${why} ` +
    '(expected sqlite:/path/to/meta.db or etcd://host:port[,host:port][/prefix])', {detail: {url}})
}

/** Parse and normalise; `url` in the result is canonical (absolute SQLite path), safe to hand to another process. */
export function parseMetadataUrl(url: string): ParsedUrl {
  if (typeof url !== 'string') throw bad(String(url), 'not a string')
  if (url.startsWith('sqlite:')) {
    let rest = url.slice('sqlite:'.length)
    if (rest.startsWith('///')) rest = rest.slice(2)
    else if (rest.startsWith('//')) throw bad(url, 'sqlite: takes a path, not a host (use sqlite:/abs/path or sqlite:///abs/path)')
    if (rest === '') throw bad(url, 'no file path after sqlite:')
    if (rest.includes('\0')) throw bad(url, 'NUL in the path')
    const path = resolve(rest)
    return {driver: 'sqlite', path, url: `sqlite:${path}`}
  }
  if (url.startsWith('etcd://')) {
    const rest = url.slice('etcd://'.length)
    if (/[?#]/.test(rest)) throw bad(url, 'query strings and fragments are not supported')
    const slash = rest.indexOf('/')
    const hostPart = slash < 0 ? rest : rest.slice(0, slash)
    const hosts = hostPart.split(',')
    for (const h of hosts) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h)
      if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(url, `${JSON.stringify(h)} is not host:port`)
    }
    const path = slash < 0 ? '' : rest.slice(slash)
    const prefix = path === '' || path === '/' ? DEFAULT_ETCD_PREFIX : `${path.replace(/\/+$/, '')}/`
    return {driver: 'etcd', hosts, prefix, url: `etcd://${hosts.join(',')}${prefix === DEFAULT_ETCD_PREFIX ? '' : prefix.slice(0, -1)}`}
  }
  throw bad(url, 'unknown scheme')
}

/**
 * Open a store. BAD_INPUT for a malformed URL or option; METADATA_UNAVAILABLE when the file cannot be opened
 * or etcd does not answer within timeoutMs; BAD_FORMAT_VERSION when a newer logctl wrote the store.
 */
export async function openMetadataStore(url: string, opts: OpenOptions = {}): Promise<MetadataStore> {
  const parsed = parseMetadataUrl(url)
  const timeoutMs = opts.timeoutMs
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS)) {
    throw new LogError(ErrorCode.BAD_INPUT, `timeoutMs must be an integer in 1..${MAX_TIMEOUT_MS}, got ${String(timeoutMs)}`)
  }
  if (parsed.driver === 'sqlite') {
    const {openSqliteStore} = await import('./sqlite.js')
    return openSqliteStore(parsed.url, parsed.path, timeoutMs)
  }
  const {openEtcdStore} = await import('./etcd.js')
  return openEtcdStore(parsed.url, parsed.hosts, parsed.prefix, timeoutMs)
}
