// Calls OneStory's gRPC port with @grpc/grpc-js, the protos loaded at run time by
// @grpc/proto-loader (no code generation): what a Node.js team would write first. Prints one
// JSON object with what it saw; connect_test.py checks it.
//
//   node grpc_js_client.mjs --tools <dir with node_modules> --proto <repo>/proto \
//     --target 127.0.0.1:50051 --tenant acme --key <API key>
import { createRequire } from 'node:module';
import path from 'node:path';

function option(name) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error('missing --' + name);
  return process.argv[i + 1];
}

const require = createRequire(path.join(path.resolve(option('tools')), 'node_modules', 'x.js'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const tenant = option('tenant');

// /usr/include holds the well-known types (google/protobuf/*.proto) of Debian's libprotobuf-dev.
const definition = protoLoader.loadSync(
  ['onestory/v1/identity.proto', 'onestory/v1/timeline.proto', 'onestory/v1/context.proto'],
  { includeDirs: [option('proto'), '/usr/include'], enums: String, longs: String, oneofs: true });
const v1 = grpc.loadPackageDefinition(definition).onestory.v1;
const target = option('target');
const credentials = grpc.credentials.createInsecure();
const metadata = new grpc.Metadata();
metadata.set('authorization', 'Bearer ' + option('key'));

const call = (client, method, request) => new Promise((resolve, reject) => {
  client[method](request, metadata, { deadline: Date.now() + 5000 },
                 (err, response) => (err ? reject(err) : resolve(response)));
});

const identity = new v1.IdentityService(target, credentials);
const timeline = new v1.TimelineService(target, credentials);
const context = new v1.ContextService(target, credentials);

const phone = '+1 628 555 ' + String(process.pid % 10000).padStart(4, '0');
const resolved = await call(identity, 'Resolve', {
  tenant, identifier: { type: 'IDENTIFIER_TYPE_PHONE', value: phone }, createIfMissing: true });
await call(timeline, 'Append', {
  tenant, customer: { customerId: resolved.customerId },
  events: [{ eventId: 'grpc-js-1', channel: 'CHANNEL_VOICE', kind: 'EVENT_KIND_MESSAGE',
             actor: { type: 'TYPE_CUSTOMER' }, summary: 'sent through grpc-js' }],
});
// The screen pop by the calling number, as a phone system asks for it.
const ctx = await call(context, 'GetContext', {
  tenant, customer: { identifier: { type: 'IDENTIFIER_TYPE_PHONE', value: phone } } });
let refused = null;
try {
  await call(timeline, 'Append', { tenant, customer: { customerId: resolved.customerId },
                                   events: [{ eventId: 'grpc-js-bad' }] });
} catch (e) {
  refused = { code: grpc.status[e.code], details: e.details };
}
for (const c of [identity, timeline, context]) c.close();
console.log(JSON.stringify({
  customerId: resolved.customerId,
  profileCustomerId: ctx.profile && ctx.profile.customerId,
  recentEventIds: ctx.recentEvents.map((e) => e.eventId),
  refused,
}));
