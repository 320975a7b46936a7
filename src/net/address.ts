import {ErrorCode, LogError} from '../errors.js'

export interface HostPort {
  host: string
  port: number
}

/** Parse `host:port` or `[v6]:port` (port 0..65535; 0 = pick a free one when listening). */
export function parseHostPort(text: string, what = 'address'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text)
  const port = Number(m?.[3])
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new LogError(ErrorCode.BAD_INPUT, `${what} ${JSON.stringify(text)} is not host:port`, {detail: {[what]: text}})
  }
  return {host: m[1] ?? m[2] ?? '', port}
}

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
