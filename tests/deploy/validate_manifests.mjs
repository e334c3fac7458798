// Validates the Kubernetes manifests under deploy/kubernetes/ offline, as each overlay
// (overlays/single, overlays/cluster) renders them with the base (kustomize's resources,
// JSON 6902 patches and images, implemented here for what the kustomizations use):
//
//  1. each YAML document (parsed as YAML 1.1, as kubectl does: `0440` is octal, an unquoted
//     `yes` is a boolean) against its kind's schema from npm's kubernetes-models (types,
//     required fields, enums; the schemas allow unknown fields, as the API server's do without
//     strict field validation);
//  2. what the schemas cannot know about OneStory:
//     - every OneStory container (its command runs an onestory-* binary) names its Redis with
//       exactly one of --redis / --redis_cluster (flag or ONESTORY_ variable); every flag it
//       passes is an ABSL_FLAG of services/server/server_runner.cc, every ONESTORY_ variable
//       one the server reads (kFlagNames there); the Redis password comes from a Secret;
//     - its image is pinned by digest;
//     - each Redis address it names is a pod of a StatefulSet of the same overlay
//       (<statefulset>-<n>.<service>:<port>, n below its replicas), and its Redis user is one
//       that StatefulSet's redis-server defines, with the rights the function library needs;
//     - a Secret volume of a pod that runs as a non-root user is readable by the pod's fsGroup;
//     - a Redis Cluster StatefulSet (--cluster-enabled yes) has 6 replicas, announces its pod IP
//       (from the downward API) and its ports, keeps an append-only file on a claimed volume,
//       does not require full coverage, sets a node timeout, and has a PodDisruptionBudget with
//       maxUnavailable 1; the Job creating it names every pod and 1 replica per primary;
//     - no kind/name twice in one overlay (one overlay is one deployable set), and every YAML
//       file under deploy/kubernetes is part of an overlay.
//
// Usage: node validate_manifests.mjs --root <repo> --tools <dir with node_modules>
// Exits 1 naming the file, the document (1-based) and the error of each problem.

import fs from 'node:fs';
import path from 'node:path';
import {testOptions} from './test_options.mjs';

const {root, toolsRequire} =
    testOptions('validate_manifests.mjs', ['yaml', 'kubernetes-models/v1']);
const YAML = toolsRequire('yaml');

const problems = [];
let documentCount = 0;

// ---- The flags onestory-server knows, from its source.

const runner = fs.readFileSync(path.join(root, 'services/server/server_runner.cc'), 'utf8');
const flagNames = new Set([...runner.matchAll(/ABSL_FLAG\(\s*[\w:<>]+\s*,\s*(\w+)\s*,/g)]
                              .map((m) => m[1]));
const listMatch = runner.match(/kFlagNames\[\]\s*=\s*\{([^}]*)\}/);
const environmentFlags = new Set(listMatch ? [...listMatch[1].matchAll(/"(\w+)"/g)].map((m) => m[1])
                                           : []);
if (flagNames.size < 10 || environmentFlags.size < 10) {
  console.error('could not read the flags (ABSL_FLAG, kFlagNames) of services/server/server_runner.cc');
  process.exit(1);
}

// ---- Reading the manifests: each overlay (deploy/kubernetes/overlays/<name>) rendered as
// `kubectl apply -k` renders it. Only what the kustomizations use is implemented (resources:
// files and folders with their own kustomization.yaml; patches: JSON 6902 operations on a
// kind/name target; images: newName and digest), and anything else in a kustomization.yaml is
// a problem, so what is checked is what kubectl applies.

const kubernetesDir = path.join(root, 'deploy/kubernetes');

function yamlFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(entry.name)) out.push(p);
  }
  return out.sort();
}

// {file, index, doc, where} for every non-empty document of file; YAML errors are problems.
function readFile(file) {
  const rel = path.relative(root, file);
  const out = [];
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), {version: '1.1'});
  docs.forEach((d, i) => {
    const where = `${rel} document ${i + 1}`;
    for (const e of d.errors) problems.push(`${where}: YAML: ${e.message}`);
    if (d.errors.length) return;
    const doc = d.toJS();
    if (doc === null || doc === undefined) return;
    out.push({file: rel, index: i + 1, doc, where: `${where} (${doc.kind} ${doc.metadata?.name})`});
  });
  return out;
}

// Applies one JSON 6902 operation (add, replace, remove) to doc; false when its path is not
// there.
function applyOperation(doc, op) {
  const tokens = String(op.path).split('/').slice(1)
                     .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = tokens.pop();
  let node = doc;
  for (const t of tokens) {
    if (node === null || typeof node !== 'object' || !(t in node)) return false;
    node = node[t];
  }
  if (node === null || typeof node !== 'object') return false;
  if (Array.isArray(node)) {
    const i = last === '-' ? node.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > node.length) return false;
    if (op.op === 'add') node.splice(i, 0, op.value);
    else if (i >= node.length) return false;
    else if (op.op === 'replace') node[i] = op.value;
    else node.splice(i, 1);
    return true;
  }
  if (op.op !== 'add' && !(last in node)) return false;
  if (op.op === 'remove') delete node[last];
  else node[last] = op.value;
  return true;
}

const kustomizationKeys = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images']);

// The documents the kustomization in dir renders; `used` collects the files read.
function render(dir, used) {
  const kfile = path.join(dir, 'kustomization.yaml');
  const rel = path.relative(root, kfile);
  if (!fs.existsSync(kfile)) {
    problems.push(`${path.relative(root, dir)}: no kustomization.yaml`);
    return [];
  }
  used.add(kfile);
  const k = YAML.parse(fs.readFileSync(kfile, 'utf8'), {version: '1.1'}) || {};
  for (const key of Object.keys(k)) {
    if (!kustomizationKeys.has(key)) problems.push(`${rel}: '${key}' is not checked by this test`);
  }
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') {
    problems.push(`${rel}: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  const out = [];
  for (const r of k.resources || []) {
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) {
      problems.push(`${rel}: resource ${r} does not exist`);
    } else if (fs.statSync(p).isDirectory()) {
      out.push(...render(p, used));
    } else {
      used.add(p);
      out.push(...readFile(p));
    }
  }
  for (const patch of k.patches || []) {
    const {kind, name} = patch.target || {};
    const targets = out.filter((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
    if (targets.length !== 1) {
      problems.push(`${rel}: a patch's target ${kind}/${name} matches ${targets.length} documents`);
      continue;
    }
    for (const op of YAML.parse(String(patch.patch || '')) || []) {
      if (!['add', 'replace', 'remove'].includes(op.op) || !applyOperation(targets[0].doc, op)) {
        problems.push(`${rel}: patch ${op.op} ${op.path} does not apply to ${kind}/${name}`);
      }
    }
  }
  for (const image of k.images || []) {
    for (const key of Object.keys(image)) {
      if (!['name', 'newName', 'digest'].includes(key)) {
        problems.push(`${rel}: images: '${key}' is not checked by this test`);
      }
    }
    for (const m of out) {
      for (const c of podSpecOf(m.doc)?.containers || []) {
        if (c.image.split(/[:@]/)[0] !== image.name) continue;
        c.image = (image.newName || image.name) + (image.digest ? `@${image.digest}` : '');
      }
    }
  }
  return out;
}

// The rendered documents of every overlay, each with its set (the overlay's folder); every
// YAML file under deploy/kubernetes must be part of one.
function readManifests() {
  const used = new Set();
  const out = [];
  const overlays = path.join(kubernetesDir, 'overlays');
  for (const name of fs.readdirSync(overlays).sort()) {
    const dir = path.join(overlays, name);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const m of render(dir, used)) {
      out.push({...m, set: path.relative(root, dir), where: `${path.relative(root, dir)}: ${m.where}`});
    }
  }
  for (const file of yamlFiles(kubernetesDir)) {
    if (!used.has(file)) problems.push(`${path.relative(root, file)}: in no overlay`);
  }
  return out;
}

// ---- 1. The schemas.

function validateSchema(m) {
  const {doc} = m;
  if (typeof doc !== 'object' || !doc.apiVersion || !doc.kind) {
    problems.push(`${m.where}: no apiVersion and kind`);
    return;
  }
  let model;
  try {
    model = toolsRequire(`kubernetes-models/${doc.apiVersion}`)[doc.kind];
  } catch (e) {
    model = undefined;
  }
  if (typeof model !== 'function') {
    problems.push(`${m.where}: no schema for apiVersion ${doc.apiVersion} kind ${doc.kind}`);
    return;
  }
  try {
    new model(doc).validate();
  } catch (e) {
    const details = (e.errors || []).map((x) => `${x.instancePath || '/'} ${x.message}` +
                                                (x.params?.allowedValues ? ` (${x.params.allowedValues.join(', ')})` : ''));
    problems.push(`${m.where}: schema: ${details.length ? details.join('; ') : e.message}`);
  }
}

// ---- 2. OneStory's own rules.

function podSpecOf(doc) {
  switch (doc.kind) {
    case 'Deployment': case 'StatefulSet': case 'DaemonSet': case 'Job': case 'ReplicaSet':
      return doc.spec?.template?.spec;
    case 'CronJob': return doc.spec?.jobTemplate?.spec?.template?.spec;
    case 'Pod': return doc.spec;
    default: return undefined;
  }
}

function isOneStory(container) {
  const command = [...(container.command || []), ...(container.args || [])];
  return command.length > 0 && /^onestory-[a-z]+$/.test(path.basename(String(command[0])));
}

// The OneStory flags a container sets: name -> {value, from}.
function oneStoryFlags(container, where, problemsOut) {
  const flags = new Map();
  const argv = [...(container.command || []), ...(container.args || [])].slice(1).map(String);
  for (let i = 0; i < argv.length; ++i) {
    const m = argv[i].match(/^--?([A-Za-z0-9_]+)(?:=(.*))?$/s);
    if (!m) {
      problemsOut.push(`${where}: argument '${argv[i]}' is not a --flag`);
      continue;
    }
    let value = m[2];
    if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    if (!flagNames.has(m[1])) {
      problemsOut.push(`${where}: flag --${m[1]} is not an ABSL_FLAG of services/server/server_runner.cc`);
    }
    flags.set(m[1], {value: value ?? 'true', from: `--${m[1]}`});
  }
  for (const e of container.env || []) {
    if (!String(e.name).startsWith('ONESTORY_')) continue;
    const flag = e.name.slice('ONESTORY_'.length).toLowerCase();
    if (!environmentFlags.has(flag)) {
      problemsOut.push(`${where}: ${e.name} is not read by the server (no flag '${flag}' in kFlagNames ` +
                       'of services/server/server_runner.cc)');
      continue;
    }
    if (flags.has(flag)) continue;  // the command line wins
    flags.set(flag, {value: e.valueFrom ? '<from ' + Object.keys(e.valueFrom)[0] + '>' : String(e.value ?? ''),
                     from: e.name, valueFrom: e.valueFrom});
  }
  return flags;
}

// The redis-server command line of a container, or undefined: its command, or the redis image's
// entrypoint, which runs redis-server when the first argument is an option.
function redisArgv(container) {
  const argv = [...(container.command || []), ...(container.args || [])].map(String);
  if (argv.length > 0 && path.basename(argv[0]) === 'redis-server') return argv;
  const redisImage = /^(docker\.io\/)?(library\/)?redis(:|@|$)/.test(String(container.image));
  if (redisImage && !container.command && argv.length > 0 && argv[0].startsWith('-')) {
    return ['redis-server', ...argv];
  }
  return undefined;
}

// redis-server's "--name value..." arguments: name -> list of value lists (a name may repeat).
function redisArgs(container) {
  const argv = redisArgv(container);
  const out = new Map();
  let current = null;
  for (const a of argv) {
    if (a.startsWith('--')) {
      current = [];
      if (!out.has(a.slice(2))) out.set(a.slice(2), []);
      out.get(a.slice(2)).push(current);
    } else if (current) {
      current.push(a);
    }
  }
  return out;
}

function isRedisServer(container) {
  return redisArgv(container) !== undefined;
}

function first(args, name) {
  const v = args.get(name);
  return v && v[0] ? v[0].join(' ') : undefined;
}

// The StatefulSets of one overlay that run redis-server: [{doc, container, args, service}].
function redisStatefulSets(manifests) {
  const out = [];
  for (const m of manifests) {
    if (m.doc.kind !== 'StatefulSet') continue;
    for (const c of podSpecOf(m.doc)?.containers || []) {
      if (isRedisServer(c)) out.push({m, doc: m.doc, container: c, args: redisArgs(c)});
    }
  }
  return out;
}

function redisPort(r) {
  return Number(first(r.args, 'port') ?? 6379);
}

// Finds the StatefulSet whose pod `host:port` names, or reports why none does.
function podOf(address, sets) {
  const m = String(address).match(/^([a-z0-9-]+)-(\d+)\.([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)$/);
  if (!m) return {error: `'${address}' is not <statefulset>-<n>.<service>:<port>`};
  const [, name, n, service, port] = m;
  const set = sets.find((r) => r.doc.metadata?.name === name);
  if (!set) return {error: `'${address}': no redis-server StatefulSet ${name} in this overlay`};
  if (set.doc.spec?.serviceName !== service) {
    return {error: `'${address}': StatefulSet ${name}'s service is ${set.doc.spec?.serviceName}, not ${service}`};
  }
  if (Number(n) >= (set.doc.spec?.replicas ?? 1)) {
    return {error: `'${address}': StatefulSet ${name} has ${set.doc.spec?.replicas ?? 1} replicas, no pod ${n}`};
  }
  if (Number(port) !== redisPort(set)) {
    return {error: `'${address}': StatefulSet ${name}'s redis-server listens on ${redisPort(set)}`};
  }
  return {set};
}

// The ACL users a redis-server defines with --user: name -> rules.
function redisUsers(r) {
  const users = new Map();
  for (const values of r.args.get('user') || []) {
    if (values.length) users.set(values[0], values.slice(1));
  }
  return users;
}

const kFunctionRights = ['+function|load', '+function|list', '+fcall', '+fcall_ro'];

function checkOneStoryContainer(m, podSpec, container, sets) {
  const where = `${m.where} container ${container.name}`;
  const flags = oneStoryFlags(container, where, problems);
  const single = flags.get('redis');
  const cluster = flags.get('redis_cluster');
  const named = [single, cluster].filter((f) => f && f.value !== '');
  if (named.length !== 1) {
    problems.push(`${where}: names ${named.length ? 'both --redis and --redis_cluster' : 'no Redis'}: ` +
                  'set exactly one of --redis / ONESTORY_REDIS or --redis_cluster / ONESTORY_REDIS_CLUSTER');
    return;
  }
  const addresses = single && single.value !== '' ? [single.value] : cluster.value.split(',');
  let target;
  for (const a of addresses) {
    const found = podOf(a.trim(), sets);
    if (found.error) {
      problems.push(`${where}: ${named[0].from}: ${found.error}`);
      continue;
    }
    target = found.set;
    const clustered = first(found.set.args, 'cluster-enabled') === 'yes';
    if (clustered !== (cluster !== undefined && cluster.value !== '')) {
      problems.push(`${where}: ${named[0].from} names ${a}, a ${clustered ? '' : 'non-'}cluster Redis: ` +
                    `use ${clustered ? '--redis_cluster' : '--redis'}`);
    }
  }
  if (cluster && cluster.value !== '' && target) {
    const replicas = target.doc.spec?.replicas ?? 1;
    if (addresses.length < Math.min(3, replicas)) {
      problems.push(`${where}: --redis_cluster names ${addresses.length} seed node(s); name at least 3 ` +
                    'so that one node down does not stop a start');
    }
  }
  const password = flags.get('redis_password');
  if (password && !password.valueFrom?.secretKeyRef) {
    problems.push(`${where}: the Redis password (${password.from}) must come from a Secret (valueFrom.secretKeyRef)`);
  }
  if (target) {
    const users = redisUsers(target);
    const user = flags.get('redis_user')?.value || 'default';
    const rules = users.get(user);
    if (!rules) {
      problems.push(`${where}: Redis user '${user}' is not defined (--user) by StatefulSet ${target.doc.metadata.name}`);
    } else {
      if (!rules.includes('on')) problems.push(`${where}: Redis user '${user}' is not 'on'`);
      const all = rules.includes('+@all') || rules.includes('allcommands');
      const missing = all ? [] : kFunctionRights.filter((r) => !rules.includes(r));
      if (missing.length) {
        problems.push(`${where}: Redis user '${user}' lacks ${missing.join(' ')} (OneStory loads and calls ` +
                      'its function library)');
      }
      if (!rules.some((r) => r === '~os:*' || r === '~*' || r === 'allkeys')) {
        problems.push(`${where}: Redis user '${user}' may not touch OneStory's keys (~os:*)`);
      }
    }
  }
}

function checkSecretModes(m, podSpec) {
  const context = podSpec.securityContext || {};
  const volumes = (podSpec.volumes || []).filter((v) => v.secret);
  for (const c of podSpec.containers || []) {
    const user = c.securityContext?.runAsUser ?? context.runAsUser;
    if (user === undefined || user === 0) continue;
    for (const v of volumes) {
      if (!(c.volumeMounts || []).some((vm) => vm.name === v.name)) continue;
      const mode = v.secret.defaultMode ?? 0o644;
      const readable = (mode & 0o004) || (context.fsGroup !== undefined && (mode & 0o040));
      if (!readable) {
        problems.push(`${m.where}: container ${c.name} runs as user ${user} but Secret volume ${v.name} ` +
                      `(mode 0${mode.toString(8)}) is readable only by root: set fsGroup and a group-readable mode (0440)`);
      }
    }
  }
}

function selects(selector, labels) {
  const want = selector?.matchLabels || {};
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

function checkRedisCluster(r, manifests) {
  const where = `${r.m.where} container ${r.container.name}`;
  const {doc, container, args} = r;
  const env = new Map((container.env || []).map((e) => [e.name, e]));
  const expect = (cond, what) => { if (!cond) problems.push(`${where}: Redis Cluster: ${what}`); };
  expect(doc.spec?.replicas === 6, `replicas is ${doc.spec?.replicas}, must be 6 (3 primaries, 3 replicas)`);
  const ip = first(args, 'cluster-announce-ip');
  const ipVar = ip?.match(/^\$\((\w+)\)$/)?.[1];
  expect(ipVar && env.get(ipVar)?.valueFrom?.fieldRef?.fieldPath === 'status.podIP',
         `--cluster-announce-ip must be $(VAR) with VAR from fieldRef status.podIP (it is '${ip}')`);
  const port = redisPort(r);
  const ports = (container.ports || []).map((p) => p.containerPort);
  expect(Number(first(args, 'cluster-announce-port')) === port,
         `--cluster-announce-port must be the port, ${port} (it is ${first(args, 'cluster-announce-port')})`);
  const bus = Number(first(args, 'cluster-announce-bus-port'));
  expect(bus === port + 10000, `--cluster-announce-bus-port must be ${port + 10000} (it is ${bus || 'unset'})`);
  expect(ports.includes(port) && ports.includes(port + 10000), `containerPorts must include ${port} and ${port + 10000}`);
  expect(first(args, 'cluster-require-full-coverage') === 'no', '--cluster-require-full-coverage must be no');
  expect(Number(first(args, 'cluster-node-timeout')) > 0, '--cluster-node-timeout must be set');
  expect(first(args, 'appendonly') === 'yes', '--appendonly must be yes');
  const dir = first(args, 'dir') ?? '/data';
  const claims = (doc.spec?.volumeClaimTemplates || []).map((v) => v.metadata?.name);
  expect((container.volumeMounts || []).some((vm) => vm.mountPath === dir && claims.includes(vm.name)),
         `--dir ${dir} must be a volumeClaimTemplates volume`);
  expect(first(args, 'masterauth') !== undefined, '--masterauth must be set (replicas authenticate to primaries)');
  const labels = doc.spec?.template?.metadata?.labels;
  const pdbs = manifests.filter((m) => m.doc.kind === 'PodDisruptionBudget' && selects(m.doc.spec?.selector, labels));
  expect(pdbs.length === 1 && pdbs[0].doc.spec?.maxUnavailable === 1,
         `needs one PodDisruptionBudget with maxUnavailable 1 selecting its pods (found ${pdbs.length})`);
  const service = manifests.find((m) => m.doc.kind === 'Service' && m.doc.metadata?.name === doc.spec?.serviceName);
  expect(service && service.doc.spec?.clusterIP === 'None', `service ${doc.spec?.serviceName} must be headless`);
  // The Job that creates the cluster.
  const creators = manifests.filter((m) => m.doc.kind === 'Job' && JSON.stringify(m.doc).includes('--cluster create'));
  expect(creators.length === 1, `needs one Job running redis-cli --cluster create (found ${creators.length})`);
  for (const job of creators) {
    const text = JSON.stringify(job.doc);
    expect(/--cluster-replicas 1\b/.test(text), `${job.where}: must create with --cluster-replicas 1`);
    for (let n = 0; n < (doc.spec?.replicas ?? 0); ++n) {
      const pod = `${doc.metadata.name}-${n}.${doc.spec.serviceName}`;
      expect(text.includes(pod), `${job.where}: does not name pod ${pod}`);
    }
    expect(/cluster info/i.test(text), `${job.where}: must look at CLUSTER INFO before creating`);
  }
}

function checkUniqueNames(manifests) {
  const seen = new Map();
  for (const m of manifests) {
    const key = `${m.set} ${m.doc.kind}/${m.doc.metadata?.name}`;
    if (seen.has(key)) problems.push(`${m.where}: ${m.doc.kind} ${m.doc.metadata?.name} is also ${seen.get(key)}`);
    else seen.set(key, m.where);
  }
}

// ---- Run.

const manifests = readManifests();
documentCount = manifests.length;
manifests.forEach(validateSchema);
checkUniqueNames(manifests);
const folders = [...new Set(manifests.map((m) => m.set))];
let oneStoryContainers = 0;
let clusters = 0;
for (const folder of folders) {
  const inFolder = manifests.filter((m) => m.set === folder);
  const sets = redisStatefulSets(inFolder);
  for (const m of inFolder) {
    const podSpec = podSpecOf(m.doc);
    if (!podSpec) continue;
    checkSecretModes(m, podSpec);
    for (const c of podSpec.containers || []) {
      if (!isOneStory(c)) continue;
      ++oneStoryContainers;
      checkOneStoryContainer(m, podSpec, c, sets);
      if (!/@sha256:[0-9a-f]{64}$/.test(c.image || '')) {
        problems.push(`${m.where}: image ${c.image} is not pinned by digest`);
      }
    }
  }
  for (const r of sets) {
    if (first(r.args, 'cluster-enabled') !== 'yes') continue;
    ++clusters;
    checkRedisCluster(r, inFolder);
  }
}
if (oneStoryContainers === 0) problems.push('no OneStory container found under deploy/kubernetes');

for (const p of problems) console.error(p);
console.log(`manifests: ${documentCount} documents in ${folders.length} overlays, ${oneStoryContainers} OneStory ` +
            `containers, ${clusters} Redis Cluster(s); ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
