#include "libs/engagement/customer_script.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"

namespace onestory::engagement {

const char kEngagementLua[] = R"lua(
-- Protobuf wire format, to add a field to a serialized event (a field repeated later in the
-- bytes wins, so appending sets it).
local function os_varint(n)
  local s = ''
  while n >= 128 do
    s = s .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return s .. string.char(n)
end
local function os_pb_int(field, v) return os_varint(field * 8) .. os_varint(v) end
local function os_pb_str(field, v) return os_varint(field * 8 + 2) .. os_varint(#v) .. v end

local function os_stage_leave(id, c)
  if c.sg == '' then return end
  redis.call('ZREM', P.jp .. 'open:' .. c.sg, P.cid .. '|' .. id)
  local d = P.jp .. 'dur:' .. c.sg
  redis.call('LPUSH', d, math.max(0, P.now - c.se))
  redis.call('LTRIM', d, 0, 999)
end
local function os_stage_enter(id, c, stage)
  c.sg = stage
  c.se = P.now
  if stage == '' then return end
  redis.call('ZADD', P.jp .. 'open:' .. stage, P.now, P.cid .. '|' .. id)
  os_stage_count(stage, 'entered')
end

-- For a call keyed by an event id (a retry): {1, record, stream id, stored blob} when the
-- timeline holds the event, else nil.
local function os_done_before(eid, record)
  local sid = redis.call('HGET', K.dd, eid)
  if not sid then return nil end
  local x = redis.call('XRANGE', K.tl, sid, sid)
  local blob = ''
  if #x > 0 then blob = x[1][2][2] end
  return {1, record or '', sid, blob}
end

)lua";

namespace {

void RunResolved(const StoreContext& ctx, const std::string& tenant, const redis::Script& script,
                 std::shared_ptr<std::vector<std::string>> own_args, int64_t now_ms,
                 absl::Time deadline, const identity::IdentityStore::Resolved& who,
                 Callback<ScriptResult> done) {
  std::string via = who.identifier.type() == v1::IDENTIFIER_TYPE_UNSPECIFIED
                        ? std::string()
                        : identity::IdentifierField(who.identifier);
  auto tag = std::make_shared<std::string>();
  identity::FollowMerges<ScriptResult>(
      who.customer_id,
      [ctx, tenant, &script, own_args, now_ms, deadline, via, tag](const std::string& customer_id,
                                                                   Callback<ScriptResult> cb) {
        std::vector<std::string> argv =
            timeline::EffectArgs(tenant, customer_id, now_ms, *tag, via, ctx.policy);
        argv.insert(argv.end(), own_args->begin(), own_args->end());
        ctx.client->Eval(
            script, timeline::EffectKeys(tenant, customer_id), std::move(argv), deadline,
            [customer_id, now_ms, cb = std::move(cb)](absl::StatusOr<redis::Reply> r) mutable {
              if (!r.ok()) return cb(r.status());
              cb(ScriptResult{customer_id, now_ms, *std::move(r)});
            });
      },
      std::move(done),
      [tag](const identity::Moved& m) {
        *tag = tag->empty() ? m.merge_id : absl::StrCat(*tag, ",", m.merge_id);
      });
}

}  // namespace

void RunCustomerScript(const StoreContext& ctx, const std::string& tenant,
                       const v1::CustomerRef& ref, bool create_if_missing,
                       const redis::Script& script, std::vector<std::string> args, int64_t now_ms,
                       absl::Time deadline, Callback<ScriptResult> done,
                       BeforeCreate before_create) {
  if (create_if_missing && !ref.has_identifier()) {
    return done(absl::InvalidArgumentError(
        "create_if_missing: needs customer.identifier (a customer id cannot be created)"));
  }
  auto own_args = std::make_shared<std::vector<std::string>>(std::move(args));
  auto run = [ctx, tenant, &script, own_args, now_ms, deadline](
                 absl::StatusOr<identity::IdentityStore::Resolved> who,
                 Callback<ScriptResult> done) {
    if (!who.ok()) return done(who.status());
    RunResolved(ctx, tenant, script, own_args, now_ms, deadline, *who, std::move(done));
  };
  if (!create_if_missing || before_create == nullptr) {
    return ctx.identity->ResolveRef(
        tenant, "customer", ref, create_if_missing, deadline,
        [run,
         done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
          run(std::move(who), std::move(done));
        });
  }
  // Look first; check the request against a new customer before creating one.
  ctx.identity->ResolveRef(
      tenant, "customer", ref, false, deadline,
      [ctx, tenant, ref, deadline, run, before_create = std::move(before_create),
       done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
        if (who.ok() || who.status().code() != absl::StatusCode::kNotFound) {
          return run(std::move(who), std::move(done));
        }
        before_create([ctx, tenant, ref, deadline, run,
                       done = std::move(done)](absl::StatusOr<bool> passed) mutable {
          if (!passed.ok()) return done(passed.status());
          ctx.identity->ResolveRef(
              tenant, "customer", ref, true, deadline,
              [run, done = std::move(done)](
                  absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
                run(std::move(who), std::move(done));
              });
        });
      });
}

}  // namespace onestory::engagement
