/**
 * Where a logctl process finds its cluster when nothing is said: the metadata URL comes from the
 * --metadata flag, else LOGCTL_METADATA, else the local standalone cluster's SQLite file under
 * LOGCTL_HOME (default ~/.logctl), so that every command on the machine of a local cluster finds it with
 * no flags.
 */
import {homedir} from 'node:os'
import {join} from 'node:path'

export function logctlHome(env: NodeJS.ProcessEnv = process.env): string {
  return env['LOGCTL_HOME'] || join(homedir(), '.logctl')
}

export function defaultMetadataUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env['LOGCTL_METADATA'] || `sqlite:${join(logctlHome(env), 'standalone', 'meta.db')}`
}
