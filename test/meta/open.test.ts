/** Metadata store URLs: what each form means, and that anything else is BAD_INPUT before any I/O. */
import t from 'tap'
import {resolve} from 'node:path'
import {ErrorCode} from '../../src/errors.js'
import {DEFAULT_ETCD_PREFIX, openMetadataStore, parseMetadataUrl} from '../../src/meta/open.js'

t.test('sqlite URLs name a file, made absolute so another process can open the same one', async t => {
  t.same(parseMetadataUrl('sqlite:/var/lib/logctl/meta.db'), {driver: 'sqlite', path: '/var/lib/logctl/meta.db', url: 'sqlite:/var/lib/logctl/meta.db'})
  t.same(parseMetadataUrl('sqlite:///var/lib/meta.db'), {driver: 'sqlite', path: '/var/lib/meta.db', url: 'sqlite:/var/lib/meta.db'})
  const rel = resolve('data/meta.db')
  t.same(parseMetadataUrl('sqlite:data/meta.db'), {driver: 'sqlite', path: rel, url: `sqlite:${rel}`}, 'relative to the working directory')
})

t.test('etcd URLs list hosts and may carry a key prefix', async t => {
  t.same(parseMetadataUrl('etcd://127.0.0.1:2379'), {driver: 'etcd', hosts: ['127.0.0.1:2379'], prefix: DEFAULT_ETCD_PREFIX, url: 'etcd://127.0.0.1:2379'})
  t.same(parseMetadataUrl('etcd://a:1,b.example:2,[::1]:3/'), {driver: 'etcd', hosts: ['a:1', 'b.example:2', '[::1]:3'], prefix: DEFAULT_ETCD_PREFIX, url: 'etcd://a:1,b.example:2,[::1]:3'})
  t.same(parseMetadataUrl('etcd://h:2379/team/a//'), {driver: 'etcd', hosts: ['h:2379'], prefix: '/team/a/', url: 'etcd://h:2379/team/a'})
})

t.test('anything else is BAD_INPUT, before any I/O', async t => {
  for (const url of ['', 'http://127.0.0.1:2379', 'sqlite:', 'sqlite://host/db', 'sqlite:a\0b', 'etcd://', 'etcd://host',
    'etcd://host:0', 'etcd://host:70000', 'etcd://h:1,', 'etcd://h:1?timeout=3', 'etcd://user@h:1', 42 as unknown as string]) {
    await t.rejects(openMetadataStore(url), {code: ErrorCode.BAD_INPUT, message: /metadata store URL/}, JSON.stringify(url))
  }
  for (const timeoutMs of [0, -1, 1.5, 10_000_000]) {
    await t.rejects(openMetadataStore('sqlite:/tmp/never-opened.db', {timeoutMs}), {code: ErrorCode.BAD_INPUT}, `timeoutMs ${timeoutMs}`)
  }
})
