// Runs what deploy/kubernetes/overlays/cluster/redis-cluster.yaml runs, on this machine: 6 redis-servers
// started with the StatefulSet's own arguments (the pod's IP and the Secret's password filled in
// as Kubernetes would, each node on free ports of 127.0.0.1 in a temporary directory instead of
// 6379/16379 and /data), then the create Job's own script twice, then the readiness probe.
// Checks: redis-server accepts every argument; the Job creates a cluster of 3 primaries with a
// replica each, and the second run finds it and changes nothing; replicas authenticate to their
// primaries (masteruser/masterauth); the ACL user can load and call a function library on a
// key under os:* and read CLUSTER SHARDS, and may not touch another key; the probe passes with
// the password and fails without it.
//
// Usage: node redis_cluster_manifest_test.mjs --root <repo> --tools <dir with node_modules>
// Needs redis-server, redis-cli, sh and getent on PATH. Prints "redis cluster manifest: N passed,
// N failed".

import {execFileSync, spawn, spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {testOptions} from './test_options.mjs';

const {root, toolsRequire} = testOptions('redis_cluster_manifest_test.mjs', ['yaml']);
const YAML = toolsRequire('yaml');

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) {
    ++passed;
    console.log(`ok: ${what}`);
  } else {
    ++failed;
    console.log(`FAILED: ${what}${detail ? `\n${detail}` : ''}`);
  }
}

const manifestPath = path.join(root, 'deploy/kubernetes/overlays/cluster/redis-cluster.yaml');
const docs = YAML.parseAllDocuments(fs.readFileSync(manifestPath, 'utf8'), {version: '1.1'})
                 .map((d) => d.toJS()).filter(Boolean);
const statefulSet = docs.find((d) => d.kind === 'StatefulSet');
const job = docs.find((d) => d.kind === 'Job');
const redis = statefulSet.spec.template.spec.containers[0];
const create = job.spec.template.spec.containers[0];
const replicas = statefulSet.spec.replicas;

// Two free ports, p and p + 10000 (the bus), as cluster-announce-bus-port expects; both below
// Linux's ephemeral range (32768 and up), where outgoing connections could take them meanwhile.
async function freePort() {
  for (;;) {
    const p = 10000 + crypto.randomInt(0, 12000);
    const free = await Promise.all([p, p + 10000].map((q) => new Promise((resolve) => {
      const s = net.createServer().once('error', () => resolve(false));
      s.listen(q, '127.0.0.1', () => s.close(() => resolve(true)));
    })));
    if (free.every(Boolean)) return p;
  }
}

const password = crypto.randomBytes(12).toString('hex');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'onestory-redis-cluster-'));
const servers = [];
const ports = [];

// The container's arguments as the kubelet expands them for pod n, moved to port p and dir d.
function argsFor(n, p, d) {
  const vars = {POD_IP: '127.0.0.1', POD_NAME: `${statefulSet.metadata.name}-${n}`, REDIS_PASSWORD: password};
  const args = redis.args.map((a) => String(a).replace(/\$\((\w+)\)/g, (m, v) => vars[v] ?? m));
  const replace = {'--port': String(p), '--cluster-announce-port': String(p),
                   '--cluster-announce-bus-port': String(p + 10000), '--dir': d,
                   '--cluster-config-file': path.join(d, 'nodes.conf')};
  for (let i = 0; i + 1 < args.length; ++i) {
    if (replace[args[i]] !== undefined) args[i + 1] = replace[args[i]];
  }
  return args.slice(1);  // args[0] is redis-server
}

function cli(port, ...command) {
  const r = spawnSync('redis-cli', ['-p', String(port), '--user', 'onestory', '--no-auth-warning', ...command],
                      {env: {...process.env, REDISCLI_AUTH: password}, encoding: 'utf8'});
  return (r.stdout || '').replace(/\r/g, '').trim();
}
function info(port, field) {
  return (cli(port, 'cluster', 'info').match(new RegExp(`^${field}:(.*)$`, 'm')) || [])[1];
}
async function waitFor(what, f, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function runJob() {
  const script = create.command[2];
  const env = {...process.env, REDISCLI_AUTH: password,
               REDIS_NODES: ports.map((p) => `127.0.0.1:${p}`).join(' ')};
  return spawnSync(create.command[0], [create.command[1], script], {env, encoding: 'utf8', timeout: 300000});
}

try {
  for (let n = 0; n < replicas; ++n) {
    const p = await freePort();
    const d = path.join(tmp, String(n));
    fs.mkdirSync(d);
    ports.push(p);
    const log = fs.openSync(path.join(d, 'stdout'), 'w');
    servers.push(spawn('redis-server', argsFor(n, p, d), {stdio: ['ignore', log, log]}));
  }
  const up = await waitFor('ping', () => ports.every((p) => cli(p, 'ping') === 'PONG'));
  check(up, `${replicas} redis-servers start with the StatefulSet's arguments`,
        up ? '' : ports.map((p, n) => fs.readFileSync(path.join(tmp, String(n), 'stdout'), 'utf8')).join('\n'));
  if (!up) throw new Error('no cluster to test');

  const first = runJob();
  check(first.status === 0 && /creating the cluster/.test(first.stdout) && /cluster ok/.test(first.stdout),
        'the create Job creates the cluster', `${first.stdout}\n${first.stderr}`);
  const roles = ports.map((p) => (cli(p, 'role').split('\n')[0]));
  check(roles.filter((r) => r === 'master').length === 3 && roles.filter((r) => r === 'slave').length === 3,
        '3 primaries and 3 replicas', roles.join(' '));
  check(ports.every((p) => info(p, 'cluster_state') === 'ok' && info(p, 'cluster_slots_assigned') === '16384'),
        'every node: cluster_state ok, 16384 slots assigned');
  const linked = await waitFor('replication', () => ports.every((p) => {
    const r = cli(p, 'info', 'replication');
    return /role:master/.test(r) ? /connected_slaves:1/.test(r) : /master_link_status:up/.test(r);
  }));
  check(linked, 'every replica is linked to its primary (masteruser/masterauth)');

  const before = ports.map((p) => cli(p, 'cluster', 'myid') + info(p, 'cluster_current_epoch'));
  const second = runJob();
  check(second.status === 0 && /the cluster exists/.test(second.stdout) && !/creating the cluster/.test(second.stdout),
        'the create Job run again finds the cluster and does not create', `${second.stdout}\n${second.stderr}`);
  const after = ports.map((p) => cli(p, 'cluster', 'myid') + info(p, 'cluster_current_epoch'));
  check(JSON.stringify(before) === JSON.stringify(after), 'node ids and epochs unchanged by the second run');

  // The ACL user: a function library on every primary, a call on a key under os:*.
  const primaries = ports.filter((p, i) => roles[i] === 'master');
  const library = "#!lua name=deploytest\nredis.register_function('deploytest_set', function(keys, args) " +
                  "return redis.call('SET', keys[1], args[1]) end)";
  check(primaries.every((p) => cli(p, 'function', 'load', 'replace', library) === 'deploytest'),
        'the ACL user loads a function library (FUNCTION LOAD) on every primary');
  const key = 'os:{deploytest}:k';
  // Only the primary of the key's slot runs it (the others answer MOVED).
  const owner = primaries.find((p) => cli(p, 'fcall', 'deploytest_set', '1', key, 'v') === 'OK');
  check(owner !== undefined && cli(owner, 'get', key) === 'v', 'FCALL on an os:* key, on its primary');
  check(/NOPERM/.test(cli(owner ?? primaries[0], 'set', 'other:{deploytest}', 'v')),
        'a key outside os:* is refused (NOPERM)');
  check(/slots|nodes/.test(cli(primaries[0], 'cluster', 'shards')), 'CLUSTER SHARDS answers the ACL user');

  // The readiness probe's command, pointed at one node.
  const probe = redis.readinessProbe.exec.command;
  const probeScript = probe[2].replace('redis-cli ', `redis-cli -p ${ports[0]} `);
  const good = spawnSync(probe[0], [probe[1], probeScript], {env: {...process.env, REDISCLI_AUTH: password}});
  const bad = spawnSync(probe[0], [probe[1], probeScript], {env: {...process.env, REDISCLI_AUTH: 'wrong'}});
  check(good.status === 0 && bad.status !== 0, 'the readiness probe passes with the password, fails without');
} catch (e) {
  check(false, 'the test ran to its end', String(e.stack || e));
} finally {
  for (const s of servers) s.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  fs.rmSync(tmp, {recursive: true, force: true});
}
console.log(`redis cluster manifest: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
