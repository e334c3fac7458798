#include "libs/context/context_store.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/timeline_store.h"

namespace onestory::context {
namespace {

using redis::Reply;

// KEYS: profile, identifiers, timeline, conversations. ARGV: customer id, recent count.
const redis::Script kGetContext("context.get", absl::StrCat(identity::kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], false)
if err then return err end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[2]),
        redis.call('HGETALL', KEYS[4]), redis.call('XLEN', KEYS[3])}
)lua"));

absl::StatusOr<v1::GetContextResponse> BuildContext(const std::string& customer_id, const Reply& r,
                                                    int64_t now_ms) {
  if (!r.is_array() || r.elements.size() != 5) {
    return absl::InternalError("unexpected reply from context script");
  }
  v1::GetContextResponse resp;
  *resp.mutable_profile() = identity::ProfileFromHashes(customer_id, r.elements[0], r.elements[1]);
  for (const Reply& entry : r.elements[2].elements) {
    absl::StatusOr<v1::Event> e = timeline::EventFromEntry(customer_id, entry);
    if (!e.ok()) return e.status();
    *resp.add_recent_events() = *std::move(e);
  }
  // Per-channel activity lives in the profile hash as act:<channel> -> ms.
  const auto& pf = r.elements[0].elements;
  for (size_t i = 0; i + 1 < pf.size(); i += 2) {
    absl::string_view name = pf[i].str;
    int channel = 0;
    int64_t ms = 0;
    if (absl::StartsWith(name, identity::kActivityPrefix) &&
        absl::SimpleAtoi(name.substr(identity::kActivityPrefix.size()), &channel) &&
        absl::SimpleAtoi(pf[i + 1].str, &ms)) {
      v1::ChannelActivity* a = resp.add_channels();
      a->set_channel(static_cast<v1::Channel>(channel));
      *a->mutable_at() = FromMillis(ms);
    }
  }
  std::sort(resp.mutable_channels()->begin(), resp.mutable_channels()->end(),
            [](const auto& a, const auto& b) { return ToMillis(a.at()) > ToMillis(b.at()); });
  if (resp.channels_size() > 0) *resp.mutable_last_activity() = resp.channels(0);
  // Open conversations: id -> "<first ms>|<last ms>|<events>|<channel>".
  const auto& cv = r.elements[3].elements;
  for (size_t i = 0; i + 1 < cv.size(); i += 2) {
    std::vector<absl::string_view> parts = absl::StrSplit(cv[i + 1].str, '|');
    int64_t first = 0, last = 0, count = 0;
    int channel = 0;
    if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &first) ||
        !absl::SimpleAtoi(parts[1], &last) || !absl::SimpleAtoi(parts[2], &count) ||
        !absl::SimpleAtoi(parts[3], &channel)) {
      continue;
    }
    if (last < now_ms - kOpenConversationIdleMs) continue;
    v1::OpenConversation* c = resp.add_open_conversations();
    c->set_conversation_id(cv[i].str);
    c->set_channel(static_cast<v1::Channel>(channel));
    *c->mutable_started_at() = FromMillis(first);
    *c->mutable_last_activity_at() = FromMillis(last);
    c->set_event_count(count);
  }
  std::sort(resp.mutable_open_conversations()->begin(), resp.mutable_open_conversations()->end(),
            [](const auto& a, const auto& b) {
              return ToMillis(a.last_activity_at()) > ToMillis(b.last_activity_at());
            });
  resp.set_total_events(r.elements[4].integer);
  return resp;
}

}  // namespace

void ContextStore::GetContext(const v1::GetContextRequest& request, absl::Time deadline,
                              Callback<v1::GetContextResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (request.recent_events() < 0 || request.recent_events() > kMaxRecentEvents) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("recent_events: must be between 0 and ", kMaxRecentEvents)));
  }
  int count = request.recent_events() == 0 ? kDefaultRecentEvents : request.recent_events();
  std::string tenant = request.tenant();
  identity_->ResolveRef(
      tenant, "customer", request.customer(), false, deadline,
      [this, tenant, count, deadline,
       done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
        if (!who.ok()) return done(who.status());
        identity::FollowMerges<v1::GetContextResponse>(
            who->customer_id,
            [this, tenant, count, deadline](const std::string& customer_id,
                                            Callback<v1::GetContextResponse> cb) {
              keys::CustomerKeys ck(tenant, customer_id);
              client_->Eval(kGetContext,
                            {ck.profile(), ck.identifiers(), ck.timeline(), ck.conversations()},
                            {customer_id, absl::StrCat(count)}, deadline,
                            [customer_id, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                              if (!r.ok()) return cb(r.status());
                              cb(BuildContext(customer_id, *r, NowMillis()));
                            });
            },
            std::move(done));
      });
}

}  // namespace onestory::context
