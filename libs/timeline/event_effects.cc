#include "libs/timeline/event_effects.h"

#include <array>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/timeline_effects_lua.h"
#include "libs/retention/retention.h"
#include "libs/retention/trim_lua.h"

namespace onestory::timeline {

namespace {

// After retention::kTrimLua (os_trim) and kEffectsLuaText (libs/timeline/lua/effects.lua):
// binds its K and P from the EVAL script's KEYS and ARGV, in the order of EffectKeys and
// EffectArgs, and reads an event's arguments from ARGV (os_event_arg).
constexpr char kEvalBinding[] = R"lua(
os_effects({p = KEYS[1], tl = KEYS[2], dd = KEYS[3], cv = KEYS[4], ids = KEYS[5], cs = KEYS[6],
            ca = KEYS[7], fa = KEYS[8], ct = KEYS[9], cc = KEYS[10], sg = KEYS[11],
            alog = KEYS[12], aids = KEYS[13], aopen = KEYS[14], jn = KEYS[15], jst = KEYS[16],
            due = KEYS[17], act = KEYS[18]},
           {cid = ARGV[1], now = tonumber(ARGV[2]), notify = ARGV[3], tag = ARGV[4],
            via = ARGV[5], achan = ARGV[6], jp = ARGV[7], window = tonumber(ARGV[8]),
            arepeat = tonumber(ARGV[9]), astreak = tonumber(ARGV[10]),
            maxev = tonumber(ARGV[11]), maxage = tonumber(ARGV[12]), rep = nil})

-- The event arguments of os_append starting at ARGV[b].
local function os_event_arg(b) return os_event_at(ARGV, b) end
)lua";

template <size_t N, size_t M, size_t O>
constexpr std::array<char, N + M + O - 2> Concat(const char (&a)[N], const char (&b)[M],
                                                 const char (&c)[O]) {
  std::array<char, N + M + O - 2> out{};
  for (size_t i = 0; i + 1 < N; ++i) out[i] = a[i];
  for (size_t i = 0; i + 1 < M; ++i) out[N - 1 + i] = b[i];
  for (size_t i = 0; i < O; ++i) out[N + M - 2 + i] = c[i];
  return out;
}

constexpr auto kEffectsText = Concat(retention::kTrimLua, kEffectsLuaText, kEvalBinding);

}  // namespace

// A constant: usable by other files' static initializers (their Script objects).
const char* const kEventEffectsLua = kEffectsText.data();

std::vector<std::string> EffectKeys(absl::string_view tenant, absl::string_view customer_id) {
  keys::CustomerKeys ck(tenant, customer_id);
  keys::TenantKeys tk(tenant);
  return {ck.profile(),
          ck.timeline(),
          ck.dedup(),
          ck.conversations(),
          ck.identifiers(),
          ck.conversation_records(),
          ck.cases(),
          ck.facts(),
          ck.contacts(),
          ck.contact_channels(),
          ck.signals(),
          tk.alert_log(),
          tk.alert_ids(),
          tk.alert_open(),
          tk.journey_counters(),
          tk.journey_stages(),
          keys::DuePromisesKey(),
          tk.activity()};
}

std::vector<std::string> EffectArgs(absl::string_view tenant, absl::string_view customer_id,
                                    int64_t now_ms, absl::string_view tag, absl::string_view via,
                                    const EngagementPolicy& policy) {
  keys::CustomerKeys ck(tenant, customer_id);
  keys::TenantKeys tk(tenant);
  const retention::Limits limits = RetentionLimits(tenant, policy);
  return {std::string(customer_id),
          absl::StrCat(now_ms),
          ck.channel(),
          std::string(tag),
          std::string(via),
          tk.alert_channel(),
          tk.journey_prefix(),
          absl::StrCat(absl::ToInt64Milliseconds(policy.repeat_window)),
          absl::StrCat(policy.alert_repeat_contacts),
          absl::StrCat(policy.alert_negative_streak),
          absl::StrCat(limits.max_events),
          absl::StrCat(absl::ToInt64Milliseconds(limits.max_age))};
}

retention::Limits RetentionLimits(absl::string_view tenant, const EngagementPolicy& policy) {
  return policy.retention != nullptr ? policy.retention->For(tenant) : retention::DefaultLimits();
}

void SetStorageRedactor(const privacy::Redactor* redactor) {
  privacy::SetStorageRedactor(redactor);
}

const privacy::Redactor& StorageRedactor() { return privacy::StorageRedactor(); }

void AppendEventArgs(const v1::Event& e, std::vector<std::string>* args) {
  args->push_back(e.event_id());
  args->push_back(e.SerializeAsString());
  args->push_back(absl::StrCat(static_cast<int>(e.channel())));
  args->push_back(absl::StrCat(static_cast<int>(e.kind())));
  args->push_back(absl::StrCat(ToMillis(e.occurred_at())));
  args->push_back(e.conversation_id());
  args->push_back(e.has_sentiment() ? absl::StrCat(e.sentiment()) : std::string());
  args->push_back(e.case_id());
}

}  // namespace onestory::timeline
