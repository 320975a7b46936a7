/**
 * The cluster metadata store: etcd v3, reached through its JSON gateway (etcd-gateway.ts).
 *
 * Every change is one etcd transaction whose compare is the CAS: a record's version is its key's mod
 * revision, and `MOD == expected` either wins atomically or returns the current record in the failure
 * branch (so a lost CAS costs one round trip, not two). Ledger ids come from a counter key that moves only
 * in the same transaction that creates the ledger. Bookie liveness is a key attached to a lease that the
 * registration keeps alive; the bookie's record is a plain key, so a bookie whose lease expired is still
 * listed, as down. Key layout: docs/METADATA.md.
 */
import {randomUUID} from 'node:crypto'
import {setTimeout as delay} from 'node:timers/promises'
import {ErrorCode, LogError} from '../errors.js'
import {MAX_LEDGER_ID} from '../ids.js'
import {RECORD_FORMAT, decodeBookie, decodeLedger, encodeBookie, encodeLedger, padLedgerId, prefixEnd} from './codec.js'
import {EtcdGateway, isNotFound, type Compare, type KeyValue, type Op} from './etcd-gateway.js'
import {Registration, type LivenessBackend} from './registration.js'
import {
  DEFAULT_BOOKIE_TTL_MS, type BookieInfo, type BookieRegistration, type BookieStatus, type CreateLedgerOptions, type KvEntry,
  type LedgerMetadata, type ListLedgersOptions, type MetadataStore, type NewLedger, type RegisterOptions, type Versioned,
} from './store.js'
import {
  badVersion, checkBookieInfo, checkKey, checkLedger, checkLedgerId, checkListOptions, checkNewLedger, checkPrefix, checkTtl, checkValue, checkVersion,
  closedStore, noSuchLedger,
} from './validate.js'

export const DEFAULT_ETCD_TIMEOUT_MS = 5000
/** Id allocation retries when another creator moved the counter first; each round has at least one winner. */
const MAX_ID_ATTEMPTS = 64

const buf = (s: string): Buffer => Buffer.from(s, 'utf8')
const absent = (key: Buffer): Compare => ({key, target: 'MOD', result: 'EQUAL', revision: 0n})
const atVersion = (key: Buffer, version: bigint): Compare => ({key, target: 'MOD', result: 'EQUAL', revision: version})
const get = (key: Buffer): Op => ({range: {key}})

export async function openEtcdStore(url: string, hosts: string[], prefix: string, timeoutMs = DEFAULT_ETCD_TIMEOUT_MS): Promise<EtcdStore> {
  const gw = new EtcdGateway(hosts, timeoutMs)
  try {
    // The first call proves etcd answers (or fails within timeoutMs) and stamps the layout's format once.
    const key = buf(`${prefix}format`)
    const res = await gw.txn([absent(key)], [{put: {key, value: buf(JSON.stringify({format: RECORD_FORMAT}))}}], [get(key)])
    const existing = res.responses[0]?.kvs[0]
    if (existing !== undefined) checkLayout(prefix, existing.value.toString())
    return new EtcdStore(url, gw, prefix)
  } catch (err) {
    await gw.close()
    throw err
  }
}

/** The `format` key says which layout the prefix holds: refuse one from a newer logctl rather than misread it. */
function checkLayout(prefix: string, text: string): void {
  let format: unknown
  try {
    format = (JSON.parse(text) as {format?: unknown}).format
  } catch {
    // handled below, with the same message as a missing number
  }
  if (typeof format !== 'number') throw new LogError(ErrorCode.CORRUPT, `etcd key ${prefix}format holds no format number: ${text.slice(0, 100)}`)
  if (format !== RECORD_FORMAT) {
    throw new LogError(ErrorCode.BAD_FORMAT_VERSION, `etcd prefix ${prefix} holds metadata format ${format}; this logctl reads format ${RECORD_FORMAT} (upgrade logctl)`)
  }
}

export class EtcdStore implements MetadataStore {
  readonly #registrations = new Set<Registration>()
  #closing: Promise<void> | undefined
  /** The last create in line (see createLedger) and the id counter as this store last saw it (a stale one only costs a retry). */
  #createTurn: Promise<unknown> = Promise.resolve()
  #counter: KeyValue | undefined
  readonly #counterKey: Buffer
  readonly #ledgers: string
  readonly #kv: string
  readonly #bookies: string

  constructor(readonly url: string, private readonly gw: EtcdGateway, prefix: string) {
    this.#counterKey = buf(`${prefix}ids/next-ledger`)
    this.#ledgers = `${prefix}ledgers/`
    this.#kv = `${prefix}kv/`
    this.#bookies = `${prefix}bookies/`
  }

  createLedger(meta: NewLedger, opts?: CreateLedgerOptions): Promise<Versioned<LedgerMetadata>> {
    try {
      this.#open()
      const checked = checkNewLedger(meta)
      const wanted = opts?.ledgerId === undefined ? undefined : checkLedgerId(opts.ledgerId)
      // Creates through one store take turns: creators in one process would otherwise only race each other
      // for the counter (measured: 16 in flight starved one past 64 lost rounds). Contention is then between
      // processes only, and the winner's counter stays cached, so an uncontended create is one round trip.
      const turn = this.#createTurn.then(() => this.#create(checked, wanted))
      this.#createTurn = turn.catch(() => undefined)
      return turn
    } catch (err) {
      return Promise.reject(err)
    }
  }

  async #create(checked: NewLedger, wanted: bigint | undefined): Promise<Versioned<LedgerMetadata>> {
    let counter = this.#counter ?? (await this.gw.range(this.#counterKey))[0]
    // Past an id found taken without our counter knowing (a counter key deleted by hand): never reuse it.
    let floor = 0n
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      const counted = counter === undefined ? 1n : BigInt(counter.value.toString())
      const next = counted > floor ? counted : floor
      const id = wanted ?? next
      if (id > MAX_LEDGER_ID) throw new LogError(ErrorCode.INTERNAL, 'the ledger id space is exhausted')
      const value: LedgerMetadata = {ledgerId: id, ...checked}
      const key = this.#ledgerKey(id)
      // The counter moves in the same txn as the create, so an id is never handed out twice, nor below one ever used.
      const compare = [absent(key)]
      const success: Op[] = [{put: {key, value: buf(encodeLedger(value))}}]
      const moved = id >= next ? buf((id + 1n).toString()) : undefined
      if (moved !== undefined) {
        compare.push(atVersion(this.#counterKey, counter?.modRevision ?? 0n))
        success.push({put: {key: this.#counterKey, value: moved}})
      }
      const res = await this.gw.txn(compare, success, [get(key), get(this.#counterKey)])
      if (res.succeeded) {
        if (moved !== undefined) this.#counter = {key: this.#counterKey, value: moved, modRevision: res.revision}
        return {value, version: res.revision}
      }
      if (res.responses[0]?.kvs[0] !== undefined) {
        if (wanted !== undefined) throw new LogError(ErrorCode.LEDGER_EXISTS, `ledger ${id} already exists`, {detail: {ledgerId: id.toString()}})
        floor = id + 1n
      }
      counter = this.#counter = res.responses[1]?.kvs[0]
      // Another process moved the counter first: spread the next round out a little.
      await delay(Math.random() * Math.min(20, 2 ** attempt))
    }
    throw new LogError(ErrorCode.BAD_VERSION, `could not allocate a ledger id: lost the id counter race ${MAX_ID_ATTEMPTS} times`)
  }

  async getLedger(id: bigint): Promise<Versioned<LedgerMetadata>> {
    this.#open()
    const kv = (await this.gw.range(this.#ledgerKey(checkLedgerId(id))))[0]
    if (kv === undefined) throw noSuchLedger(id)
    return this.#decodeLedger(kv, id)
  }

  async updateLedger(meta: LedgerMetadata, expectedVersion: bigint): Promise<Versioned<LedgerMetadata>> {
    this.#open()
    const value = checkLedger(meta)
    const expected = checkVersion(expectedVersion)
    const key = this.#ledgerKey(value.ledgerId)
    const res = await this.gw.txn([atVersion(key, expected)], [{put: {key, value: buf(encodeLedger(value))}}], [get(key)])
    if (res.succeeded) return {value, version: res.revision}
    throw res.responses[0]?.kvs[0] === undefined ? noSuchLedger(value.ledgerId) : badVersion(`ledger ${value.ledgerId}`, expected)
  }

  async deleteLedger(id: bigint, expectedVersion?: bigint): Promise<void> {
    this.#open()
    const key = this.#ledgerKey(checkLedgerId(id))
    const expected = expectedVersion === undefined ? undefined : checkVersion(expectedVersion)
    const exists: Compare = {key, target: 'CREATE', result: 'GREATER', revision: 0n}
    const res = await this.gw.txn([expected === undefined ? exists : atVersion(key, expected)], [{deleteRange: {key}}], [get(key)])
    if (!res.succeeded) throw res.responses[0]?.kvs[0] === undefined ? noSuchLedger(id) : badVersion(`ledger ${id}`, expected)
  }

  async listLedgers(opts?: ListLedgersOptions): Promise<bigint[]> {
    this.#open()
    const {after, limit} = checkListOptions(opts)
    const from = buf(after < 0n ? this.#ledgers : `${this.#ledgers}${padLedgerId(after + 1n)}`)
    const kvs = await this.gw.range(from, {end: prefixEnd(buf(this.#ledgers)), limit, keysOnly: true})
    return kvs.map(kv => {
      const digits = kv.key.toString().slice(this.#ledgers.length)
      if (!/^\d{20}$/.test(digits)) throw new LogError(ErrorCode.CORRUPT, `etcd key ${kv.key.toString()} is not a ledger key (${this.#ledgers}<20 digits>)`)
      return BigInt(digits)
    })
  }

  async registerBookie(info: BookieInfo, opts?: RegisterOptions): Promise<BookieRegistration> {
    this.#open()
    const checked = checkBookieInfo(info)
    const ttl = checkTtl(opts?.ttlMs ?? DEFAULT_BOOKIE_TTL_MS)
    const liveness = new EtcdLiveness(this.gw, checked, randomUUID(), ttl, buf(`${this.#bookies}info/${checked.id}`), buf(`${this.#bookies}alive/${checked.id}`))
    await liveness.register()
    const reg = new Registration(checked.id, liveness, Math.floor(ttl / 3), r => this.#registrations.delete(r))
    this.#registrations.add(reg)
    return reg
  }

  async listBookies(): Promise<BookieStatus[]> {
    this.#open()
    // One range over both sub-prefixes: records and liveness keys from the same revision.
    const kvs = await this.gw.range(buf(this.#bookies), {end: prefixEnd(buf(this.#bookies))})
    const infoPrefix = `${this.#bookies}info/`
    const alivePrefix = `${this.#bookies}alive/`
    const keys = kvs.map(kv => kv.key.toString())
    const alive = new Set(keys.filter(k => k.startsWith(alivePrefix)).map(k => k.slice(alivePrefix.length)))
    const now = Date.now()
    return kvs.filter((_, i) => keys[i]!.startsWith(infoPrefix)).map(kv => {
      const {session: _session, lastSeen, ...info} = decodeBookie(kv.value.toString(), kv.key.toString())
      const up = alive.has(info.id)
      return {...info, alive: up, lastSeen: up ? now : lastSeen}
    })
  }

  async get(key: string): Promise<Versioned<Buffer> | undefined> {
    this.#open()
    const kv = (await this.gw.range(this.#kvKey(key)))[0]
    return kv === undefined ? undefined : {value: kv.value, version: kv.modRevision}
  }

  async put(key: string, value: Buffer, expectedVersion: bigint | null): Promise<bigint> {
    this.#open()
    const k = this.#kvKey(key)
    const v = checkValue(value)
    const expected = expectedVersion === null ? null : checkVersion(expectedVersion)
    // MOD == 0 holds only for an absent key; a real version (>= 1) holds only for a present one.
    const res = await this.gw.txn([atVersion(k, expected ?? 0n)], [{put: {key: k, value: v}}])
    if (!res.succeeded) throw badVersion(`key ${JSON.stringify(key)}`, expected)
    return res.revision
  }

  async delete(key: string, expectedVersion?: bigint): Promise<void> {
    this.#open()
    const k = this.#kvKey(key)
    const expected = expectedVersion === undefined ? undefined : checkVersion(expectedVersion)
    const res = await this.gw.txn(expected === undefined ? [] : [atVersion(k, expected)], [{deleteRange: {key: k}}])
    if (!res.succeeded) throw badVersion(`key ${JSON.stringify(key)}`, expected)
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.#open()
    const from = buf(this.#kv + checkPrefix(prefix))
    const kvs = await this.gw.range(from, {end: prefixEnd(from)})
    return kvs.map(kv => ({key: kv.key.toString().slice(this.#kv.length), value: kv.value, version: kv.modRevision}))
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Deregister while the connection is still open: a clean shutdown lists its bookies as down at once.
      await Promise.allSettled([...this.#registrations].map(r => r.close()))
      await this.gw.close()
    })()
    return this.#closing
  }

  #open(): void {
    if (this.#closing !== undefined) throw closedStore(this.url)
  }

  #ledgerKey(id: bigint): Buffer {
    return buf(`${this.#ledgers}${padLedgerId(id)}`)
  }

  #kvKey(key: string): Buffer {
    return buf(this.#kv + checkKey(key))
  }

  #decodeLedger(kv: KeyValue, id: bigint): Versioned<LedgerMetadata> {
    return {value: decodeLedger(kv.value.toString(), kv.key.toString(), id), version: kv.modRevision}
  }
}

/**
 * One bookie's liveness in etcd: its record (a plain key) and an `alive` key attached to a lease. Ownership
 * is the record's mod revision: each write here compares it with the revision of this registration's own
 * last write, so once another process registers the same id, every write here loses (BAD_VERSION).
 */
class EtcdLiveness implements LivenessBackend {
  #lease = ''
  #infoRevision = 0n
  readonly #ttlSeconds: number

  constructor(private readonly gw: EtcdGateway, private info: BookieInfo, private readonly session: string, ttlMs: number,
    private readonly infoKey: Buffer, private readonly aliveKey: Buffer) {
    // etcd leases count whole seconds (and etcd raises a TTL below its minimum, about 2 s by default).
    this.#ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000))
  }

  /** Takes the id over unconditionally: the newest registration of a bookie id is its owner. */
  async register(): Promise<void> {
    this.#lease = await this.gw.leaseGrant(this.#ttlSeconds)
    this.#infoRevision = (await this.gw.txn([], this.#writes(this.info))).revision
  }

  async refresh(): Promise<void> {
    // The lease expired (this process stalled, or etcd was out of reach for a ttl): come back under a new one.
    if (!(await this.gw.leaseKeepAlive(this.#lease))) return this.#rewrite(this.info, true)
    // A newer registration of the id leaves this lease alive (it only re-attaches the alive key), so the
    // lease cannot tell us we lost the id: the record's revision can.
    const record = (await this.gw.range(this.infoKey))[0]
    if (record?.modRevision !== this.#infoRevision) throw this.#lost()
  }

  publish(info: BookieInfo): Promise<void> {
    return this.#rewrite(info, false)
  }

  /** Down at once, record kept (with lastSeen = now). If another registration owns the id, its keys stay untouched. */
  async release(): Promise<void> {
    await this.gw.txn([atVersion(this.infoKey, this.#infoRevision)],
      [{put: {key: this.infoKey, value: this.#record(this.info)}}, {deleteRange: {key: this.aliveKey}}])
    await this.gw.leaseRevoke(this.#lease)
  }

  async #rewrite(info: BookieInfo, newLease: boolean): Promise<void> {
    if (newLease) this.#lease = await this.gw.leaseGrant(this.#ttlSeconds)
    let res
    try {
      res = await this.gw.txn([atVersion(this.infoKey, this.#infoRevision)], this.#writes(info))
    } catch (err) {
      // Attaching a key to an expired lease fails with NOT_FOUND: take a new lease once and write again.
      if (newLease || !isNotFound(err)) throw err
      return this.#rewrite(info, true)
    }
    if (!res.succeeded) {
      if (newLease) await this.gw.leaseRevoke(this.#lease)
      throw this.#lost()
    }
    this.#infoRevision = res.revision
    this.info = info
  }

  #writes(info: BookieInfo): Op[] {
    return [{put: {key: this.infoKey, value: this.#record(info)}}, {put: {key: this.aliveKey, value: buf(this.session), lease: this.#lease}}]
  }

  #record(info: BookieInfo): Buffer {
    return buf(encodeBookie({...info, lastSeen: Date.now(), session: this.session}))
  }

  #lost(): LogError {
    return new LogError(ErrorCode.BAD_VERSION, `bookie ${this.info.id} was registered again by another process`, {detail: {bookieId: this.info.id}})
  }
}
