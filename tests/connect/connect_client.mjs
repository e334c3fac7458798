// Calls OneStory's HTTP listener with @connectrpc/connect-node, unchanged: the Connect protocol
// over HTTP/1.1 with JSON, with clients generated from proto/ by protoc-gen-es. Prints one JSON
// object with what it saw; connect_test.py checks it.
//
//   node connect_client.mjs --tools <dir with node_modules> --gen <generated code> \
//     --base-url http://127.0.0.1:8080 --tenant acme --key <API key>
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function option(name) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error('missing --' + name);
  return process.argv[i + 1];
}

const tools = option('tools');
const gen = option('gen');
const baseUrl = option('base-url');
const tenant = option('tenant');
const key = option('key');

// The packages live in --tools (npm ci there), not beside this file.
const require = createRequire(path.join(path.resolve(tools), 'node_modules', 'x.js'));
const { createClient, ConnectError, Code } = await import(
  pathToFileURL(require.resolve('@connectrpc/connect')).href);
const { createConnectTransport } = await import(
  pathToFileURL(require.resolve('@connectrpc/connect-node')).href);
const load = (name) => import(pathToFileURL(path.join(gen, 'onestory', 'v1', name)).href);
const { IdentityService } = await load('identity_pb.js');
const { TimelineService } = await load('timeline_pb.js');
const { ContextService } = await load('context_pb.js');
const { IdentifierType, Channel, EventKind, Actor_Type } = await load('common_pb.js');

const transport = createConnectTransport({
  baseUrl,
  httpVersion: '1.1',
  useBinaryFormat: false, // JSON, as a bot platform's webhook would send
  interceptors: [(next) => async (req) => {
    req.header.set('Authorization', 'Bearer ' + key);
    return next(req);
  }],
});
const identity = createClient(IdentityService, transport);
const timeline = createClient(TimelineService, transport);
const context = createClient(ContextService, transport);

const email = 'connect-' + process.pid + '-' + Date.now() + '@example.com';
const resolved = await identity.resolve({
  tenant, identifier: { type: IdentifierType.EMAIL, value: email }, createIfMissing: true });
const customer = { ref: { case: 'customerId', value: resolved.customerId } };
const appended = await timeline.append({
  tenant, customer,
  events: [{ eventId: 'connect-1', channel: Channel.EMAIL, kind: EventKind.MESSAGE,
             actor: { type: Actor_Type.CUSTOMER }, summary: 'sent through connect-node' }],
});
const ctx = await context.getContext({ tenant, customer });

// A refused call comes back as a ConnectError with the gRPC code and the message.
let refused = null;
try {
  await timeline.append({ tenant, customer, events: [{ eventId: 'connect-bad' }] });
} catch (e) {
  const err = ConnectError.from(e);
  refused = { code: Code[err.code], message: err.rawMessage };
}

console.log(JSON.stringify({
  email,
  customerId: resolved.customerId,
  created: resolved.created,
  appendedCursor: appended.results[0].event.cursor,
  recentEventIds: ctx.recentEvents.map((e) => e.eventId),
  summary: ctx.recentEvents[0] && ctx.recentEvents[0].summary,
  refused,
}));
