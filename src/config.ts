/**
 * Where a logctl process finds its cluster and its settings. Precedence, highest first:
 *   1. command-line flags (--metadata, --log-level, ...)
 *   2. environment: LOGCTL_METADATA, LOGCTL_LOG_LEVEL, LOGCTL_DATA_DIR, ...
 *   3. the config file: $LOGCTL_CONFIG, else $LOGCTL_HOME/config.json (JSON: {"metadata": "...", "logLevel": "..."})
 *   4. the local standalone cluster last started on this machine ($LOGCTL_HOME/standalone.json, written by
 *      `logctl standalone`), so that every command finds it with no flags
 *   5. the standalone cluster's default location: sqlite:$LOGCTL_HOME/standalone/meta.db
 * LOGCTL_HOME defaults to ~/.logctl.
 */
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {ErrorCode, LogError} from './errors.js'

export function logctlHome(env: NodeJS.ProcessEnv = process.env): string {
  return env['LOGCTL_HOME'] || join(homedir(), '.logctl')
}

export interface FileConfig {
  metadata?: string
  logLevel?: string
}

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return env['LOGCTL_CONFIG'] || join(logctlHome(env), 'config.json')
}

export function readConfigFile(env: NodeJS.ProcessEnv = process.env): FileConfig {
  const file = configFile(env)
  if (!existsSync(file)) return {}
  let v: unknown
  try {
    v = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new LogError(ErrorCode.BAD_INPUT, `config file ${file} is not valid JSON: ${(err as Error).message}`, {detail: {file}})
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LogError(ErrorCode.BAD_INPUT, `config file ${file} must hold a JSON object`)
  const o = v as Record<string, unknown>
  for (const k of ['metadata', 'logLevel']) {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new LogError(ErrorCode.BAD_INPUT, `config file ${file}: "${k}" must be a string`)
  }
  return {...(typeof o['metadata'] === 'string' ? {metadata: o['metadata']} : {}), ...(typeof o['logLevel'] === 'string' ? {logLevel: o['logLevel']} : {})}
}

export function standaloneMarker(env: NodeJS.ProcessEnv = process.env): string {
  return join(logctlHome(env), 'standalone.json')
}

export function writeStandaloneMarker(info: {metadata: string; dataDir: string; pid: number; bookies: string[]}, env: NodeJS.ProcessEnv = process.env): void {
  const file = standaloneMarker(env)
  mkdirSync(dirname(file), {recursive: true})
  writeFileSync(file, `${JSON.stringify({...info, startedAt: new Date().toISOString()}, null, 2)}\n`)
}

export function defaultStandaloneDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(logctlHome(env), 'standalone')
}

export function defaultMetadataUrl(env: NodeJS.ProcessEnv = process.env): string {
  if (env['LOGCTL_METADATA']) return env['LOGCTL_METADATA']
  const fromFile = readConfigFile(env).metadata
  if (fromFile) return fromFile
  try {
    const m = JSON.parse(readFileSync(standaloneMarker(env), 'utf8')) as {metadata?: unknown}
    if (typeof m.metadata === 'string') return m.metadata
  } catch {
    // no standalone cluster was started here: fall through to its default location
  }
  return `sqlite:${join(defaultStandaloneDir(env), 'meta.db')}`
}
