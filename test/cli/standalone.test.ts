// `logctl standalone` as a newcomer runs it: up, create / append / read with no flags, SIGINT, restart,
// data intact. And the systemd side: the printed unit passes `systemd-analyze verify`, and readiness
// reaches a (fake) NOTIFY_SOCKET.
import t from 'tap'
import {execFile, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {DAEMON_NODE_FLAGS} from '../../src/server/node-flags.js'
import {ROOT, tempDir} from './helpers.js'

function run(env: NodeJS.ProcessEnv, input: string | undefined, ...args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise(resolve => {
    const p = execFile(process.execPath, ['bin/run.js', ...args], {cwd: ROOT, env}, (err, stdout, stderr) => {
      resolve({code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr})
    })
    p.stdin?.end(input ?? '')
  })
}

function startStandalone(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['bin/run.js', 'standalone', '--port', '0'], {cwd: ROOT, env})
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('standalone did not get ready in 30 s')), 30_000)
    createInterface({input: p.stdout!}).on('line', line => {
      if (line === 'ready') {
        clearTimeout(timer)
        resolve(p)
      }
    })
    p.on('exit', code => reject(new Error(`standalone exited early (${code})`)))
  })
}

t.test('standalone: up, create/append/read with no flags, Ctrl-C, restart, data intact', async t => {
  const home = tempDir(t)
  const env: NodeJS.ProcessEnv = {...process.env, LOGCTL_HOME: home, NO_COLOR: "1"}
  delete env['LOGCTL_METADATA']
  let p = await startStandalone(env)
  t.teardown(() => { p.kill('SIGKILL') })
  t.ok(existsSync(join(home, 'standalone.json')), 'it tells other commands where it is')
  t.equal((await run(env, undefined, 'create', 'demo')).code, 0)
  const appended = await run(env, 'hello\nworld\n', 'append', 'demo', '--json')
  t.equal(appended.code, 0, appended.stderr)
  t.same(appended.stdout.trim().split('\n').map(l => JSON.parse(l)), [{offset: 0}, {offset: 1}], 'one {"offset":N} per acknowledged entry, in order')
  t.equal((await run(env, undefined, 'read', 'demo')).stdout, 'hello\nworld\n')
  const stopped = new Promise<number | null>(resolve => p.on('exit', code => resolve(code)))
  p.kill('SIGINT')
  t.equal(await stopped, 0, 'Ctrl-C stops it cleanly')
  p = await startStandalone(env)
  const again = await run(env, undefined, 'read', 'demo', '--json')
  t.same(again.stdout.trim().split('\n').map(l => (JSON.parse(l) as {payload: string}).payload), ['hello', 'world'], 'data intact after a restart')
  t.equal((await run(env, 'third\n', 'append', 'demo')).code, 0, 'and it takes new entries')
  t.equal((await run(env, undefined, 'read', 'demo', '--from', '2')).stdout, 'third\n')
  const status = await run(env, undefined, 'cluster', 'status', '--json')
  t.equal(status.code, 0, status.stderr)
  t.match(JSON.parse(status.stdout), {metadata: {reachable: true}, bookies: {up: 3, down: 0, readOnly: 0}, logs: 1})
})

t.test('the config file sets the metadata URL; flags and environment take precedence over it', async t => {
  const home = tempDir(t)
  const env: NodeJS.ProcessEnv = {...process.env, LOGCTL_HOME: home}
  delete env['LOGCTL_METADATA']
  writeFileSync(join(home, 'config.json'), JSON.stringify({metadata: 'etcd://127.0.0.1:1'}))
  const fromFile = await run(env, undefined, 'logs', '--json')
  t.equal(fromFile.code, 6, 'the file was used (an unreachable etcd: metadata unavailable)')
  const fromEnv = await run({...env, LOGCTL_METADATA: `sqlite:${join(home, 'x.db')}`}, undefined, 'logs', '--json')
  t.equal(fromEnv.code, 0, 'the environment beats the file')
  const fromFlag = await run(env, undefined, 'logs', '--json', '--metadata', `sqlite:${join(home, 'y.db')}`)
  t.equal(fromFlag.code, 0, 'a flag beats the file')
  writeFileSync(join(home, 'config.json'), '{not json')
  const bad = await run(env, undefined, 'logs')
  t.equal(bad.code, 2)
  t.match(bad.stderr, /config file .* is not valid JSON/)
})

t.test('systemd: the printed unit verifies, and readiness reaches NOTIFY_SOCKET', async t => {
  const dir = tempDir(t)
  const unit = await run(process.env, undefined, 'daemon', '--print-systemd-unit', '--listen', '0.0.0.0:3181', '--metadata', 'etcd://10.0.0.5:2379')
  t.equal(unit.code, 0)
  t.match(unit.stdout, /Type=notify/)
  t.match(unit.stdout, /ProtectSystem=strict/)
  t.match(unit.stdout, /NoNewPrivileges=yes/)
  t.match(unit.stdout, /LimitNOFILE=65536/)
  t.match(unit.stdout, /Restart=on-failure/)
  t.match(unit.stdout, /StateDirectory=logctl/)
  const exec = /^ExecStart=(\S+) (.*) (\S+run\.js) daemon /m.exec(unit.stdout)
  t.equal(exec?.[2], DAEMON_NODE_FLAGS.join(' '), 'node runs the daemon with DAEMON_NODE_FLAGS')
  const file = join(dir, 'logctl-bookie.service')
  writeFileSync(file, unit.stdout)
  const verify = spawnSync('systemd-analyze', ['verify', file], {encoding: 'utf8'})
  t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`)
  t.notMatch(verify.stderr, /Unknown key|Invalid|Failed/)

  // A fake service manager: a python AF_UNIX datagram socket that prints what it receives (and closes the
  // fds systemd-notify sends with BARRIER=1, so that the barrier completes).
  const sock = join(dir, 'notify.sock')
  const listener = spawn('python3', ['-u', '-c', `
import socket, os, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    msg, fds, flags, addr = socket.recv_fds(s, 4096, 8)
    for fd in fds: os.close(fd)
    print(msg.decode().replace("\\n", "|"), flush=True)
`, sock])
  t.teardown(() => { listener.kill('SIGKILL') })
  const messages: string[] = []
  const lines = createInterface({input: listener.stdout!})
  await new Promise<void>(resolve => lines.once('line', () => resolve()))
  const gotReady = new Promise<void>(resolve => lines.on('line', l => {
    messages.push(l)
    if (l.includes('READY=1')) resolve()
  }))
  const daemon = spawn(process.execPath, ['bin/run.js', 'daemon', '--listen', '127.0.0.1:0'], {cwd: ROOT, env: {...process.env, NOTIFY_SOCKET: sock, STATE_DIRECTORY: join(dir, 'state')}})
  t.teardown(() => { daemon.kill('SIGKILL') })
  await gotReady
  t.ok(messages.some(m => m.includes('READY=1') && m.includes(`MAINPID=${daemon.pid}`)), `READY=1 with MAINPID (${messages.join(' / ')})`)
  t.ok(existsSync(join(dir, 'state', 'FORMAT')), 'data went to $STATE_DIRECTORY')
  const exited = new Promise<number | null>(resolve => daemon.on('exit', c => resolve(c)))
  daemon.kill('SIGTERM')
  t.equal(await exited, 0)
  t.ok(readFileSync(join(dir, 'state', 'FORMAT'), 'utf8').startsWith('logctl-data'))
})

t.test('bin/run.js run as a program (npx, npm bin links) gets DAEMON_NODE_FLAGS from its shebang', async t => {
  const first = readFileSync(join(ROOT, 'bin', 'run.js'), 'utf8').split('\n')[0]
  t.equal(first, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`, 'the shebang names the same flags')
  const r = spawnSync(join(ROOT, 'bin', 'run.js'), ['--version'], {cwd: ROOT, encoding: 'utf8'})
  t.equal(r.status, 0, `runs (env -S): ${r.stderr}`)
  t.match(r.stdout, /logctl\/\d+\.\d+\.\d+/)
})
