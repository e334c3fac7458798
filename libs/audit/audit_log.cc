#include "libs/audit/audit_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/redis/script.h"
#include "libs/timeline/cursor.h"

namespace onestory::audit {
namespace {

using redis::Reply;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// KEYS: the log. ARGV: start ("+" or "(<id>"), page size, customer id ("" for all).
// Walks newest first, at most 10,000 entries per call, so a filter that matches little cannot
// hold Redis: a short page with a next token just means "keep going".
// Returns {more (0|1), last stream id looked at, {entry, ...}}.
const redis::Script kList("audit.list", R"lua(
local start, want, who = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, last, scanned, more = {}, '', 0, 1
while true do
  local batch = redis.call('XREVRANGE', KEYS[1], start, '-', 'COUNT', 500)
  for _, e in ipairs(batch) do
    scanned = scanned + 1
    last = e[1]
    local f = e[2]
    local c, blob = '', ''
    for i = 1, #f, 2 do
      if f[i] == 'c' then c = f[i + 1] elseif f[i] == 'e' then blob = f[i + 1] end
    end
    if who == '' or c == who then
      out[#out + 1] = blob
      if #out >= want then break end
    end
  end
  if #out >= want or scanned >= 10000 then break end
  if #batch < 500 then more = 0 break end
  start = '(' .. last
end
if more == 1 and last ~= '' and
   #redis.call('XREVRANGE', KEYS[1], '(' .. last, '-', 'COUNT', 1) == 0 then
  more = 0
end
return {more, last, out}
)lua");

std::string TokenOwner(absl::string_view tenant, absl::string_view customer) {
  return absl::StrCat("audit:", tenant, ":", customer);
}

}  // namespace

void AuditLog::Record(absl::string_view tenant, v1::AuditEntry entry) {
  absl::Time now = absl::Now();
  if (!entry.has_at()) {
    int64_t micros = absl::ToUnixMicros(now);
    entry.mutable_at()->set_seconds(micros / 1000000);
    entry.mutable_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  }
  int64_t min_id = absl::ToUnixMillis(now - options_.retention);
  std::string customer = entry.customer_id();
  redis_->Command(
      {"XADD", keys::TenantKeys(tenant).audit_log(), "MINID", "~",
       absl::StrCat(min_id < 0 ? 0 : min_id), "*", "c", std::move(customer), "e",
       entry.SerializeAsString()},
      now + absl::Seconds(10),
      [this, tenant = std::string(tenant), method = entry.method()](absl::StatusOr<Reply> r) {
        if (r.ok()) {
          recorded_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        failures_.fetch_add(1, std::memory_order_relaxed);
        Log(LogLevel::kWarning, "audit.record_failed",
            {{"tenant", tenant},
             {"method", method},
             {"reason", std::string(r.status().message())}});
      });
}

void AuditLog::List(const v1::ListAuditEntriesRequest& req, absl::Time deadline,
                    Callback<v1::ListAuditEntriesResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (!req.customer_id().empty()) {
    if (absl::Status st = ValidateCustomerId("customer_id", req.customer_id()); !st.ok()) {
      return done(st);
    }
  }
  if (req.page_size() < 0 || req.page_size() > kMaxPageSize) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxPageSize)));
  }
  std::string owner = TokenOwner(req.tenant(), req.customer_id());
  std::string start = "+";
  if (!req.page_token().empty()) {
    absl::StatusOr<std::string> sid = timeline::DecodeCursor("page_token", req.page_token(), owner);
    if (!sid.ok()) return done(sid.status());
    start = absl::StrCat("(", *sid);
  }
  int size = req.page_size() == 0 ? kDefaultPageSize : req.page_size();
  redis_->Eval(kList, {keys::TenantKeys(req.tenant()).audit_log()},
               {start, absl::StrCat(size), req.customer_id()}, deadline,
               [owner, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                 if (!r.ok()) return done(r.status());
                 if (!r->is_array() || r->elements.size() != 3) {
                   return done(absl::InternalError("unexpected reply from the audit list script"));
                 }
                 v1::ListAuditEntriesResponse resp;
                 for (const Reply& e : r->elements[2].elements) {
                   if (!resp.add_entries()->ParseFromString(e.str)) {
                     return done(absl::DataLossError("an audit entry does not parse"));
                   }
                 }
                 if (r->elements[0].integer == 1) {
                   resp.set_next_page_token(timeline::EncodeCursor(owner, r->elements[1].str));
                 }
                 done(std::move(resp));
               });
}

}  // namespace onestory::audit
