// Who is calling and what they may do: every RPC handler asks the Authenticator first.
//
// Two credentials, both as "authorization: Bearer <credential>": an API key (libs/auth/api_keys.h)
// for the integrator's servers, and an agent token (libs/auth/agent_tokens.h, a JWT the
// integrator's backend signs) for a browser console or a bot acting as one agent. A call with an
// agent token acts as its agent: its tenant and scopes are the token's, reads are capped at the
// token's audience, and every write is the agent's (actor_interceptor.h fills an absent Actor
// with the agent and marks a request naming another; Check refuses it).
//
//   absl::StatusOr<Caller> caller =
//       auth_->Check(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
//   if (!caller.ok()) return Reject(ctx, caller.status());
//
// Order of checks (so a caller learns nothing about a tenant it may not see):
//   1. UNAUTHENTICATED: no "authorization: Bearer <key>" metadata, or an unknown key;
//   2. RESOURCE_EXHAUSTED: the key is over its rate limit (a token bucket per key in this
//      process; the key file's rate=/burst=, else the default), the message says when to retry;
//   3. PERMISSION_DENIED: the key has none of the scopes the RPC needs;
//   4. INVALID_ARGUMENT: the request's tenant is empty or malformed;
//   5. PERMISSION_DENIED: the request's tenant is not the key's.
// A rejected call reaches no store: it changes nothing. Thread-safe; Reload() may run at any
// time (SIGHUP) and swaps the whole key table at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/auth/agent_tokens.h"
#include "libs/auth/api_keys.h"
#include "onestory/v1/common.pb.h"

namespace onestory::service {

struct Caller {
  // The API key's id; "token:<kid>" for an agent token; "-" when the server runs without keys
  // (in-process tests only).
  std::string key_id;
  std::string tenant;
  auth::ScopeSet scopes;
  auth::RateLimit rate_limit = {};  // the key's own, else the default
  std::string request_id;           // the call's (request_id.h)
  // With an agent token: its subject (the agent or bot) and audience; empty / UNSPECIFIED for an
  // API key.
  std::string agent = {};
  v1::Audience agent_audience = v1::AUDIENCE_UNSPECIFIED;

  // "API key <id>" or "agent token of <agent>", for messages.
  std::string Name() const;
};

// Whether `status` is the refusal of a call by its key's rate limit (see Check).
bool IsRateLimited(const grpc::Status& status);

// The scopes that read a customer's data (GetProfile, Resolve without create, GetCase, journeys).
inline auth::ScopeSet AnyReadScope() {
  return {auth::Scope::kTimelineRead, auth::Scope::kContextReadBot, auth::Scope::kContextReadAgent,
          auth::Scope::kContextReadSupervisor};
}

class Authenticator {
 public:
  // Keys from the file at `path` (format in libs/auth/api_keys.h); fails when it cannot be
  // read or parsed.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(std::string path);
  static std::unique_ptr<Authenticator> FromTable(auth::ApiKeyTable table);
  // Every call allowed with every scope, as key "-". For in-process tests of everything but
  // authentication; no flag turns it on.
  static std::unique_ptr<Authenticator> AllowAll();

  // Accepts agent tokens signed with the keys of the file at `path` (format in
  // libs/auth/agent_tokens.h); fails when it cannot be read or parsed. Without it, an agent
  // token is refused as unknown. Set before serving.
  absl::Status SetAgentTokenKeysFile(std::string path);

  // Reads the key file (and the agent token keys file) again. On failure the keys in use stay
  // and the error is returned. A key's banked calls survive a reload.
  absl::Status Reload();

  // The limit of keys whose line sets none (default: none). Set before serving.
  void SetDefaultRateLimit(auth::RateLimit limit);

  // Whether the caller's key has no call left in its bucket now (takes nothing): a stream's
  // opening is audited before its handler runs Check.
  bool OutOfCalls(const grpc::ServerContextBase& ctx) const;

  // The caller behind the call's key or agent token, with no scope or tenant check. Between
  // OpenCall and CloseCall of its context, a call's first answer is kept and given again: the
  // handler and the interceptors all ask, and an agent token's signature is checked once per
  // call. The actor interceptor (actor_interceptor.h), which every OneStory call passes, opens and
  // closes each call.
  absl::StatusOr<Caller> Identify(const grpc::ServerContextBase& ctx) const;
  void OpenCall(const grpc::ServerContextBase* ctx) const;
  void CloseCall(const grpc::ServerContextBase* ctx) const;
  // Identify, then: the key is within its rate limit (takes one call from its bucket), has one
  // of `any_of`, and `tenant` is valid and the key's.
  absl::StatusOr<Caller> Check(const grpc::ServerContextBase& ctx, auth::ScopeSet any_of,
                               absl::string_view tenant) const;
  // Check, for handlers that need only the verdict.
  absl::Status Allow(const grpc::ServerContextBase& ctx, auth::ScopeSet any_of,
                     absl::string_view tenant) const {
    return Check(ctx, any_of, tenant).status();
  }

  bool enabled() const { return !allow_all_; }
  size_t key_count() const;

 private:
  Authenticator() = default;

  std::string path_;
  std::string token_keys_path_;
  // Identify's work: the key looked up, or the token verified.
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& ctx) const;
  // OK, or RESOURCE_EXHAUSTED when the caller's bucket is empty.
  absl::Status Admit(const Caller& caller) const;

  bool allow_all_ = false;
  mutable absl::Mutex mu_;
  std::shared_ptr<const auth::ApiKeyTable> table_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const auth::AgentTokenKeys> token_keys_ ABSL_GUARDED_BY(mu_);
  auth::RateLimit default_limit_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex buckets_mu_;
  mutable absl::flat_hash_map<std::string, auth::TokenBucket> buckets_
      ABSL_GUARDED_BY(buckets_mu_);  // by key id, or key id "/" agent for agent tokens
  // Open calls: their first Identify answer, once there is one.
  mutable absl::Mutex calls_mu_;
  mutable absl::flat_hash_map<const grpc::ServerContextBase*, std::optional<absl::StatusOr<Caller>>>
      calls_ ABSL_GUARDED_BY(calls_mu_);
};

// The audience a read runs as. `asked` (already validated) above what the caller's scopes allow
// is PERMISSION_DENIED naming the scope it needs; UNSPECIFIED is AGENT, or the caller's highest
// audience when that is lower (a bot's key reads as a bot). Ceilings: context.read.supervisor
// SUPERVISOR; context.read.agent and timeline.read AGENT; context.read.bot BOT; else CUSTOMER;
// and never above an agent token's audience.
absl::StatusOr<v1::Audience> ReadAs(const Caller& caller, v1::Audience asked);

// Check, then `req` with its audience replaced by ReadAs's (a request with an unknown audience
// value is passed on unchanged, for the store to reject with INVALID_ARGUMENT).
template <typename Request>
absl::StatusOr<Request> AuthorizeRead(const Authenticator& auth, const grpc::ServerContextBase& ctx,
                                      auth::ScopeSet any_of, const Request& req) {
  absl::StatusOr<Caller> caller = auth.Check(ctx, any_of, req.tenant());
  if (!caller.ok()) return caller.status();
  Request out = req;
  if (v1::Audience_IsValid(req.audience())) {
    absl::StatusOr<v1::Audience> as = ReadAs(*caller, req.audience());
    if (!as.ok()) return as.status();
    out.set_audience(*as);
  }
  return out;
}

// Finishes a unary call with `status` before any work was done.
grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx, const absl::Status& status);

}  // namespace onestory::service
