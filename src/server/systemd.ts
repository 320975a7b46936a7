/**
 * systemd integration without a native addon. Readiness (Type=notify): Node cannot open AF_UNIX datagram
 * sockets, so the daemon runs `systemd-notify --ready` (which since systemd 246 waits for PID 1 to read the
 * message) with --pid naming the daemon; the unit sets NotifyAccess=all because the message comes from that
 * helper process. Without NOTIFY_SOCKET (not under systemd) nothing is sent.
 */
import {execFile} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {DAEMON_NODE_FLAGS} from './node-flags.js'

export function notify(state: {ready?: boolean; stopping?: boolean; status?: string}, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (!env['NOTIFY_SOCKET']) return Promise.resolve(false)
  const args = [`--pid=${process.pid}`]
  if (state.ready) args.push('--ready')
  if (state.stopping) args.push('STOPPING=1')
  if (state.status) args.push(`--status=${state.status}`)
  return new Promise(resolve => {
    execFile('systemd-notify', args, {env, timeout: 5000}, err => resolve(err === null))
  })
}

export interface UnitOptions {
  /** Extra daemon flags, e.g. ['--listen', '0.0.0.0:3181', '--metadata', 'etcd://10.0.0.5:2379']. */
  args: string[]
  user?: string
}

/** A hardened unit for one bookie (checked by `systemd-analyze verify` in the tests). */
export function systemdUnit(o: UnitOptions): string {
  const run = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const user = o.user ?? 'logctl'
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["\\$])/g, '\\$1')}"`)
  return `[Unit]
Description=logctl bookie (durable log storage daemon)
Documentation=https://www.npmjs.com/package/logctl
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=all
ExecStart=${[process.execPath, ...DAEMON_NODE_FLAGS, run].join(' ')} daemon ${o.args.map(quote).join(' ')}
# Data under /var/lib/logctl ($STATE_DIRECTORY, used when --data-dir is not given).
StateDirectory=logctl
StateDirectoryMode=0750
User=${user}
Group=${user}
Restart=on-failure
RestartSec=2
TimeoutStartSec=120
TimeoutStopSec=60
KillSignal=SIGTERM
LimitNOFILE=65536
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=

[Install]
WantedBy=multi-user.target
`
}
