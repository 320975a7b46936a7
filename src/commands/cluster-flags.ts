/**
 * Flags shared by every command that talks to a cluster, and the one way such a command gets a client
 * (so that every command finds a local cluster with no flags, and closes what it opened).
 */
import {Flags} from '@oclif/core'
import {LogctlClient, type ClientOptions} from '../client/client.js'
import {defaultMetadataUrl} from '../config.js'

export const clusterFlags = {
  metadata: Flags.string({
    description: 'metadata store URL: sqlite:/path/meta.db or etcd://host:port[,host:port] [default: the local standalone cluster]',
    env: 'LOGCTL_METADATA',
    helpValue: '<url>',
  }),
  'timeout-ms': Flags.integer({description: 'give up on a bookie request after this long (a hung bookie is then replaced or skipped)', default: 10_000, min: 1, env: 'LOGCTL_TIMEOUT_MS'}),
}

export async function withClient<T>(flags: {metadata?: string | undefined; 'timeout-ms'?: number | undefined}, fn: (client: LogctlClient) => Promise<T>, opts: Omit<ClientOptions, 'metadata'> = {}): Promise<T> {
  const timeout = flags['timeout-ms'] === undefined ? {} : {bookieTimeoutMs: flags['timeout-ms']}
  const client = await LogctlClient.connect({...timeout, ...opts, metadata: flags.metadata ?? defaultMetadataUrl()})
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}
