#include "services/common/auth.h"

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/metrics/metrics.h"
#include "services/common/actor_interceptor.h"
#include "services/common/grpc_status.h"
#include "services/common/request_id.h"

namespace onestory::service {
namespace {

absl::StatusOr<auth::ApiKeyTable> ReadTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read API key file ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<auth::ApiKeyTable> table = auth::ApiKeyTable::Parse(text.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

// The key of "authorization: Bearer <key>"; empty when absent or of another scheme.
absl::string_view BearerKey(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return {};
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  return absl::StripAsciiWhitespace(value.substr(kScheme.size()));
}

v1::Audience Ceiling(const auth::ScopeSet& scopes) {
  using auth::Scope;
  if (scopes.Has(Scope::kContextReadSupervisor)) return v1::AUDIENCE_SUPERVISOR;
  if (scopes.Has(Scope::kContextReadAgent) || scopes.Has(Scope::kTimelineRead)) {
    return v1::AUDIENCE_AGENT;
  }
  if (scopes.Has(Scope::kContextReadBot)) return v1::AUDIENCE_BOT;
  return v1::AUDIENCE_CUSTOMER;
}

absl::StatusOr<std::shared_ptr<const auth::AgentTokenKeys>> ReadTokenKeys(const std::string& path) {
  absl::StatusOr<auth::AgentTokenKeys> keys = auth::AgentTokenKeys::FromFile(path);
  if (!keys.ok()) return keys.status();
  return std::make_shared<const auth::AgentTokenKeys>(*std::move(keys));
}

v1::Audience AudienceOf(auth::Audience a) {
  switch (a) {
    case auth::Audience::kBot:
      return v1::AUDIENCE_BOT;
    case auth::Audience::kSupervisor:
      return v1::AUDIENCE_SUPERVISOR;
    case auth::Audience::kAgent:
      break;
  }
  return v1::AUDIENCE_AGENT;
}

// The token bucket a caller draws from: its key's, or for an agent token its agent's.
std::string BucketOf(const Caller& caller) {
  return caller.agent.empty() ? caller.key_id : absl::StrCat(caller.key_id, "/", caller.agent);
}

// In every refusal's message; IsRateLimited looks for it.
constexpr absl::string_view kOverLimit = " is over its rate limit ";

// Credentials checked: an API key looked up, or an agent token's signature verified (once per
// call, see Identify).
void CountChecked(bool token) {
  static metrics::Counter* const keys = metrics::Registry::Global().GetCounter(
      "onestory_credentials_checked_total",
      "Credentials checked: an API key looked up or an agent token verified, once per call",
      {{"kind", "api_key"}});
  static metrics::Counter* const tokens = metrics::Registry::Global().GetCounter(
      "onestory_credentials_checked_total",
      "Credentials checked: an API key looked up or an agent token verified, once per call",
      {{"kind", "agent_token"}});
  (token ? tokens : keys)->Increment();
}

void CountLimited(const std::string& key_id) {
  metrics::Registry::Global()
      .GetCounter("onestory_rate_limited_total",
                  "Calls refused because their API key was over its rate limit", {{"key", key_id}})
      ->Increment();
  static std::atomic<int64_t> last_log_s{0};
  int64_t now_s = absl::ToUnixSeconds(absl::Now());
  int64_t last = last_log_s.load(std::memory_order_relaxed);
  if (now_s != last && last_log_s.compare_exchange_strong(last, now_s)) {
    Log(LogLevel::kWarning, "auth.rate_limited", {{"key", key_id}});
  }
}

}  // namespace

bool IsRateLimited(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(status.error_message(), kOverLimit);
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(std::string path) {
  absl::StatusOr<auth::ApiKeyTable> table = ReadTable(path);
  if (!table.ok()) return table.status();
  std::unique_ptr<Authenticator> a = FromTable(*std::move(table));
  a->path_ = std::move(path);
  return a;
}

std::unique_ptr<Authenticator> Authenticator::FromTable(auth::ApiKeyTable table) {
  std::unique_ptr<Authenticator> a(new Authenticator());
  a->table_ = std::make_shared<const auth::ApiKeyTable>(std::move(table));
  return a;
}

std::unique_ptr<Authenticator> Authenticator::AllowAll() {
  std::unique_ptr<Authenticator> a = FromTable(auth::ApiKeyTable());
  a->allow_all_ = true;
  return a;
}

absl::Status Authenticator::SetAgentTokenKeysFile(std::string path) {
  absl::StatusOr<std::shared_ptr<const auth::AgentTokenKeys>> keys = ReadTokenKeys(path);
  if (!keys.ok()) return keys.status();
  token_keys_path_ = std::move(path);
  absl::MutexLock lock(&mu_);
  token_keys_ = *std::move(keys);
  return absl::OkStatus();
}

absl::Status Authenticator::Reload() {
  std::shared_ptr<const auth::ApiKeyTable> fresh;
  std::shared_ptr<const auth::AgentTokenKeys> fresh_tokens;
  if (!path_.empty()) {
    absl::StatusOr<auth::ApiKeyTable> table = ReadTable(path_);
    if (!table.ok()) return table.status();
    fresh = std::make_shared<const auth::ApiKeyTable>(*std::move(table));
  }
  if (!token_keys_path_.empty()) {
    absl::StatusOr<std::shared_ptr<const auth::AgentTokenKeys>> keys =
        ReadTokenKeys(token_keys_path_);
    if (!keys.ok()) return keys.status();
    fresh_tokens = *std::move(keys);
  }
  // Both files or neither: a half-applied reload would be harder to reason about.
  absl::MutexLock lock(&mu_);
  if (fresh) table_ = std::move(fresh);
  if (fresh_tokens) token_keys_ = std::move(fresh_tokens);
  return absl::OkStatus();
}

void Authenticator::SetDefaultRateLimit(auth::RateLimit limit) {
  absl::MutexLock lock(&mu_);
  default_limit_ = limit;
}

absl::Status Authenticator::Admit(const Caller& caller) const {
  if (caller.rate_limit.unlimited()) return absl::OkStatus();
  absl::Time now = absl::Now();
  absl::Duration wait;
  {
    absl::MutexLock lock(&buckets_mu_);
    std::string bucket = BucketOf(caller);
    auto it = buckets_.find(bucket);
    if (it == buckets_.end()) {
      it = buckets_.emplace(std::move(bucket), auth::TokenBucket(caller.rate_limit, now)).first;
    } else if (!(it->second.limit() == caller.rate_limit)) {
      it->second.Reset(caller.rate_limit, now);
    }
    wait = it->second.Take(now);
  }
  if (wait == absl::ZeroDuration()) return absl::OkStatus();
  CountLimited(caller.key_id);
  int64_t wait_ms = absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)));
  return absl::ResourceExhaustedError(
      absl::StrCat(caller.Name(), kOverLimit, "(", caller.rate_limit.per_second, " calls/s, burst ",
                   caller.rate_limit.burst, ", per server instance); nothing was done: retry in ",
                   wait_ms, " ms"));
}

bool Authenticator::OutOfCalls(const grpc::ServerContextBase& ctx) const {
  absl::StatusOr<Caller> caller = Identify(ctx);
  if (!caller.ok() || caller->rate_limit.unlimited()) return false;
  absl::MutexLock lock(&buckets_mu_);
  auto it = buckets_.find(BucketOf(*caller));
  if (it == buckets_.end()) return false;
  auth::TokenBucket copy = it->second;
  return copy.Take(absl::Now()) > absl::ZeroDuration();
}

size_t Authenticator::key_count() const {
  absl::MutexLock lock(&mu_);
  return table_->size();
}

void Authenticator::OpenCall(const grpc::ServerContextBase* ctx) const {
  absl::MutexLock lock(&calls_mu_);
  calls_[ctx].reset();  // a context at the address of an ended call starts afresh
}

void Authenticator::CloseCall(const grpc::ServerContextBase* ctx) const {
  absl::MutexLock lock(&calls_mu_);
  calls_.erase(ctx);
}

absl::StatusOr<Caller> Authenticator::Identify(const grpc::ServerContextBase& ctx) const {
  {
    absl::MutexLock lock(&calls_mu_);
    auto it = calls_.find(&ctx);
    if (it != calls_.end() && it->second.has_value()) return *it->second;
  }
  absl::StatusOr<Caller> caller = Authenticate(ctx);
  absl::MutexLock lock(&calls_mu_);
  if (auto it = calls_.find(&ctx); it != calls_.end()) it->second = caller;
  return caller;
}

absl::StatusOr<Caller> Authenticator::Authenticate(const grpc::ServerContextBase& ctx) const {
  if (allow_all_) {
    return Caller{"-", "", auth::ScopeSet::All(), auth::RateLimit{}, RequestIdOf(ctx)};
  }
  absl::string_view presented = BearerKey(ctx);
  if (presented.empty()) {
    return absl::UnauthenticatedError("no API key: send metadata \"authorization: Bearer <key>\"");
  }
  std::shared_ptr<const auth::ApiKeyTable> table;
  std::shared_ptr<const auth::AgentTokenKeys> token_keys;
  auth::RateLimit default_limit;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
    token_keys = token_keys_;
    default_limit = default_limit_;
  }
  bool token = auth::LooksLikeJwt(presented);
  CountChecked(token);
  if (token) {
    if (token_keys == nullptr) {
      return absl::UnauthenticatedError(
          "agent token: this server takes none (it runs without --agent_token_keys_file)");
    }
    absl::StatusOr<auth::AgentToken> token = token_keys->Verify(presented, absl::Now());
    if (!token.ok()) return token.status();
    Caller c{absl::StrCat("token:", token->kid), token->tenant, token->scopes, default_limit,
             RequestIdOf(ctx)};
    c.agent = token->subject;
    c.agent_audience = AudienceOf(token->audience);
    return c;
  }
  const auth::ApiKey* key = table->Find(presented);
  if (key == nullptr) return absl::UnauthenticatedError("unknown API key");
  return Caller{key->id, key->tenant, key->scopes, key->LimitOr(default_limit), RequestIdOf(ctx)};
}

absl::StatusOr<Caller> Authenticator::Check(const grpc::ServerContextBase& ctx,
                                            auth::ScopeSet any_of, absl::string_view tenant) const {
  absl::StatusOr<Caller> caller = Identify(ctx);
  if (!caller.ok()) return caller;
  if (absl::Status st = Admit(*caller); !st.ok()) return st;
  if (!caller->scopes.HasAny(any_of)) {
    return absl::PermissionDeniedError(absl::StrCat(
        caller->Name(), " lacks the scope this call needs (one of: ", any_of.ToString(), ")"));
  }
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return st;
  if (allow_all_) {
    caller->tenant = std::string(tenant);
  } else if (tenant != caller->tenant) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller->Name(), " may not act for tenant ", tenant));
  }
  if (!caller->agent.empty()) {
    auto it = ctx.client_metadata().find(std::string(kActorRefused));
    if (it != ctx.client_metadata().end()) {
      return absl::PermissionDeniedError(std::string(it->second.data(), it->second.size()));
    }
  }
  return caller;
}

std::string Caller::Name() const {
  return agent.empty() ? absl::StrCat("API key ", key_id) : absl::StrCat("agent token of ", agent);
}

absl::StatusOr<v1::Audience> ReadAs(const Caller& caller, v1::Audience asked) {
  v1::Audience ceiling = Ceiling(caller.scopes);
  if (caller.agent_audience != v1::AUDIENCE_UNSPECIFIED) {
    ceiling = std::min(ceiling, caller.agent_audience);
  }
  if (asked == v1::AUDIENCE_UNSPECIFIED) return std::min(v1::AUDIENCE_AGENT, ceiling);
  if (asked <= ceiling) return asked;
  if (caller.agent_audience != v1::AUDIENCE_UNSPECIFIED && asked > caller.agent_audience) {
    return absl::PermissionDeniedError(absl::StrCat(
        "audience: ", v1::Audience_Name(asked), " is above the agent token's audience ",
        v1::Audience_Name(caller.agent_audience), " (", caller.Name(), ")"));
  }
  absl::string_view needs = asked == v1::AUDIENCE_SUPERVISOR ? "context.read.supervisor"
                            : asked == v1::AUDIENCE_AGENT    ? "context.read.agent"
                                                             : "context.read.bot";
  return absl::PermissionDeniedError(absl::StrCat(
      "audience: ", v1::Audience_Name(asked), " needs scope ", needs, " (", caller.Name(), ")"));
}

grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace onestory::service
