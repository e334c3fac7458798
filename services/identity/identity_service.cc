#include "services/identity/identity_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/log.h"
#include "libs/identity/normalize.h"
#include "libs/keys/key_schema.h"
#include "services/common/audit_interceptor.h"
#include "services/common/request_id.h"
#include "services/common/unary.h"

namespace onestory::service {

using identity::IdentityStore;

absl::StatusOr<absl::flat_hash_map<std::string, std::set<v1::IdentifierType>>>
IdentityPolicy::ParseAutoMergeTypes(absl::string_view spec) {
  absl::flat_hash_map<std::string, std::set<v1::IdentifierType>> out;
  for (absl::string_view part : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    std::string tenant(absl::StripAsciiWhitespace(kv.first));
    if (tenant.empty() || kv.second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auto_merge_types: '", part, "' is not <tenant>=<type>[+<type>...]"));
    }
    for (absl::string_view name : absl::StrSplit(kv.second, '+', absl::SkipWhitespace())) {
      name = absl::StripAsciiWhitespace(name);
      v1::IdentifierType type = keys::IdentifierTypeFromName(name);
      if (type == v1::IDENTIFIER_TYPE_UNSPECIFIED) {
        std::string upper = absl::AsciiStrToUpper(absl::StrCat("IDENTIFIER_TYPE_", name));
        v1::IdentifierType parsed;
        if (v1::IdentifierType_Parse(upper, &parsed)) type = parsed;
      }
      if (type == v1::IDENTIFIER_TYPE_UNSPECIFIED) {
        return absl::InvalidArgumentError(
            absl::StrCat("--auto_merge_types: unknown identifier type '", name, "'"));
      }
      out[tenant].insert(type);
    }
  }
  return out;
}

bool IdentityPolicy::TrustsToMerge(const std::string& tenant, v1::IdentifierType type) const {
  for (const std::string& t : {tenant, std::string("*")}) {
    auto it = auto_merge_types.find(t);
    if (it != auto_merge_types.end() && it->second.count(type) > 0) return true;
  }
  return false;
}

void IdentityServiceImpl::Reindex(const std::string& tenant, std::vector<std::string> customers) {
  for (const std::string& c : customers) {
    store_->GetProfile(
        tenant, c, absl::Now() + absl::Seconds(10), [this, tenant](absl::StatusOr<v1::Profile> p) {
          if (!p.ok()) return;  // merged or gone: nothing to index
          suggester_->IndexProfile(tenant, p->customer_id(), *p, absl::Now() + absl::Seconds(10),
                                   [](absl::StatusOr<bool>) {});
        });
  }
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Resolve(grpc::CallbackServerContext* ctx,
                                                       const v1::ResolveRequest* req,
                                                       v1::ResolveResponse* resp) {
  auth::ScopeSet scopes = AnyReadScope();
  scopes.Add(auth::Scope::kTimelineWrite);
  if (req->create_if_missing()) scopes = {auth::Scope::kTimelineWrite};
  if (absl::Status st = auth_->Allow(*ctx, scopes, req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  store_->Resolve(req->tenant(), req->identifier(), req->create_if_missing(), RequestDeadline(ctx),
                  FinishWith<IdentityStore::Resolved>(
                      reactor, resp, [](v1::ResolveResponse* out, IdentityStore::Resolved r) {
                        out->set_customer_id(r.customer_id);
                        out->set_created(r.created);
                        *out->mutable_identifier() = std::move(r.identifier);
                      }));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Link(grpc::CallbackServerContext* ctx,
                                                    const v1::LinkRequest* req,
                                                    v1::LinkResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  IdentityStore::LinkEvidence evidence{req->channel(), req->verification(), req->actor()};
  absl::Time deadline = RequestDeadline(ctx);
  v1::LinkRequest request = *req;
  std::string request_id = RequestIdOf(*ctx);
  auto fill = [](v1::LinkResponse* out, IdentityStore::Linked r) {
    *out->mutable_identifier() = std::move(r.identifier);
    out->set_already_linked(r.already_linked);
  };
  store_->Link(
      req->tenant(), req->customer_id(), req->identifier(), evidence, deadline,
      [this, reactor, resp, request, evidence, deadline, request_id,
       fill](absl::StatusOr<IdentityStore::Linked> r) mutable {
        std::string owner = r.ok() ? "" : identity::OwnerOf(r.status());
        bool strong = request.verification() >= v1::VERIFICATION_ONE_TIME_CODE;
        absl::StatusOr<v1::Identifier> id = identity::NormalizeIdentifier(
            "identifier", request.identifier(), store_->DefaultCountryOf(request.tenant()));
        if (owner.empty() || !strong || !id.ok() ||
            !policy_.TrustsToMerge(request.tenant(), id->type()) ||
            policy_.deny_list.Denied(id->type(), id->value())) {
          if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
          fill(resp, *std::move(r));
          return reactor->Finish(grpc::Status::OK);
        }
        // A trusted, verified identifier that another customer owns: they are one person.
        // The linking customer (a chat visitor, say) is merged into the owner.
        store_->RootOf(
            request.tenant(), request.customer_id(), deadline,
            [this, reactor, resp, request, evidence, deadline, owner, id = *id, request_id,
             fill](absl::StatusOr<std::string> source) mutable {
              if (!source.ok()) return reactor->Finish(ToGrpcStatus(source.status()));
              merge::MergeInput in;
              in.tenant = request.tenant();
              in.source_customer_id = *source;
              in.target_customer_id = owner;
              in.reason =
                  absl::StrCat("automatic: ", keys::IdentifierTypeName(id.type()), " '", id.value(),
                               "' verified by ", v1::Verification_Name(request.verification()),
                               " belongs to both");
              in.actor = request.actor();
              if (in.actor.type() == v1::Actor::TYPE_UNSPECIFIED) {
                in.actor.set_type(v1::Actor::TYPE_SYSTEM);
              }
              in.automatic = true;
              Log(LogLevel::kInfo, "link.auto_merge",
                  {{"request_id", request_id},
                   {"tenant", in.tenant},
                   {"source", in.source_customer_id},
                   {"target", owner}});
              merges_->Merge(in, deadline,
                             [this, reactor, resp, request, evidence, deadline,
                              fill](absl::StatusOr<merge::MergeEngine::Result> m) {
                               if (!m.ok()) return reactor->Finish(ToGrpcStatus(m.status()));
                               *resp->mutable_merge() = m->record;
                               Reindex(request.tenant(), {m->record.target_customer_id()});
                               // Now the owner's: refresh its evidence with this verification.
                               store_->Link(request.tenant(), m->record.target_customer_id(),
                                            request.identifier(), evidence, deadline,
                                            FinishWith<IdentityStore::Linked>(reactor, resp, fill));
                             });
            });
      });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Unlink(grpc::CallbackServerContext* ctx,
                                                      const v1::UnlinkRequest* req,
                                                      v1::UnlinkResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kIdentityAdmin}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  store_->Unlink(req->tenant(), req->customer_id(), req->identifier(), RequestDeadline(ctx),
                 FinishWith<bool>(reactor, resp, [](v1::UnlinkResponse*, bool) {}));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::GetProfile(grpc::CallbackServerContext* ctx,
                                                          const v1::GetProfileRequest* req,
                                                          v1::GetProfileResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, AnyReadScope(), req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  std::string tenant = req->tenant();
  absl::Time deadline = RequestDeadline(ctx);
  store_->ResolveRef(
      tenant, "customer", req->customer(), false, deadline,
      [this, reactor, resp, tenant, deadline](absl::StatusOr<IdentityStore::Resolved> who) {
        if (!who.ok()) return reactor->Finish(ToGrpcStatus(who.status()));
        store_->GetProfile(
            tenant, who->customer_id, deadline,
            FinishWith<v1::Profile>(reactor, resp, [](v1::GetProfileResponse* out, v1::Profile p) {
              *out->mutable_profile() = std::move(p);
            }));
      });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::UpdateProfile(grpc::CallbackServerContext* ctx,
                                                             const v1::UpdateProfileRequest* req,
                                                             v1::UpdateProfileResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  std::string tenant = req->tenant();
  absl::Time deadline = RequestDeadline(ctx);
  store_->UpdateProfile(tenant, req->customer_id(), req->profile(), req->update_mask(), deadline,
                        [this, reactor, resp, tenant, deadline,
                         request_id = RequestIdOf(*ctx)](absl::StatusOr<v1::Profile> p) {
                          if (!p.ok()) return reactor->Finish(ToGrpcStatus(p.status()));
                          *resp->mutable_profile() = *std::move(p);
                          // Index for merge suggestions before answering; a failure only hides
                          // suggestions until the next update, so it is logged, not returned.
                          suggester_->IndexProfile(
                              tenant, resp->profile().customer_id(), resp->profile(), deadline,
                              [reactor, tenant, request_id,
                               customer = resp->profile().customer_id()](absl::StatusOr<bool> r) {
                                if (!r.ok()) {
                                  Log(LogLevel::kWarning, "suggest.index_failed",
                                      {{"request_id", request_id},
                                       {"tenant", tenant},
                                       {"customer", customer},
                                       {"error", r.status().ToString()}});
                                }
                                reactor->Finish(grpc::Status::OK);
                              });
                        });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Merge(grpc::CallbackServerContext* ctx,
                                                     const v1::MergeRequest* req,
                                                     v1::MergeResponse* resp) {
  absl::StatusOr<Caller> caller = auth_->Check(*ctx, {auth::Scope::kIdentityAdmin}, req->tenant());
  if (!caller.ok()) return Reject(ctx, caller.status());
  auto* reactor = ctx->DefaultReactor();
  merge::MergeInput in;
  in.tenant = req->tenant();
  in.source_customer_id = req->source_customer_id();
  in.target_customer_id = req->target_customer_id();
  in.reason = req->reason();
  in.actor = req->actor();
  in.take_from_source.assign(req->take_from_source().begin(), req->take_from_source().end());
  std::string tenant = req->tenant();
  absl::Time deadline = RequestDeadline(ctx);
  AuditBefore(
      audit_, merges_->redactor(), *caller, "onestory.v1.IdentityService/Merge", *req, deadline,
      [this, reactor, resp, tenant, deadline, in = std::move(in)](absl::Status st) mutable {
        if (!st.ok()) return reactor->Finish(ToGrpcStatus(st));
        merges_->Merge(in, deadline,
                       [this, reactor, resp, tenant](absl::StatusOr<merge::MergeEngine::Result> r) {
                         if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                         Reindex(tenant, {r->record.target_customer_id()});
                         *resp->mutable_merge() = std::move(r->record);
                         resp->set_already_merged(r->already_merged);
                         reactor->Finish(grpc::Status::OK);
                       });
      });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Unmerge(grpc::CallbackServerContext* ctx,
                                                       const v1::UnmergeRequest* req,
                                                       v1::UnmergeResponse* resp) {
  absl::StatusOr<Caller> caller = auth_->Check(*ctx, {auth::Scope::kIdentityAdmin}, req->tenant());
  if (!caller.ok()) return Reject(ctx, caller.status());
  auto* reactor = ctx->DefaultReactor();
  std::string tenant = req->tenant();
  absl::Time deadline = RequestDeadline(ctx);
  AuditBefore(audit_, merges_->redactor(), *caller, "onestory.v1.IdentityService/Unmerge", *req,
              deadline, [this, reactor, req, resp, tenant, deadline](absl::Status st) {
                if (!st.ok()) return reactor->Finish(ToGrpcStatus(st));
                merges_->Unmerge(
                    tenant, req->merge_id(), req->reason(), req->actor(), deadline,
                    [this, reactor, resp, tenant](absl::StatusOr<v1::MergeRecord> r) {
                      if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                      Reindex(tenant, {r->source_customer_id(), r->target_customer_id()});
                      *resp->mutable_merge() = *std::move(r);
                      reactor->Finish(grpc::Status::OK);
                    });
              });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::GetMergeHistory(
    grpc::CallbackServerContext* ctx, const v1::GetMergeHistoryRequest* req,
    v1::GetMergeHistoryResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kIdentityAdmin}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  merges_->History(
      req->tenant(), req->customer_id(), RequestDeadline(ctx),
      FinishWith<std::vector<v1::MergeRecord>>(
          reactor, resp, [](v1::GetMergeHistoryResponse* out, std::vector<v1::MergeRecord> r) {
            for (auto& m : r) *out->add_merges() = std::move(m);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::SuggestMerges(grpc::CallbackServerContext* ctx,
                                                             const v1::SuggestMergesRequest* req,
                                                             v1::SuggestMergesResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kIdentityAdmin}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  auto* reactor = ctx->DefaultReactor();
  std::string tenant = req->tenant();
  int max = req->max_suggestions();
  absl::Time deadline = RequestDeadline(ctx);
  if (max < 0 || max > 50) {
    reactor->Finish(ToGrpcStatus(
        absl::InvalidArgumentError("max_suggestions: must be between 0 and 50 (0 means 10)")));
    return reactor;
  }
  store_->ResolveRef(
      tenant, "customer", req->customer(), false, deadline,
      [this, reactor, resp, tenant, max, deadline](absl::StatusOr<IdentityStore::Resolved> who) {
        if (!who.ok()) return reactor->Finish(ToGrpcStatus(who.status()));
        suggester_->Suggest(
            tenant, who->customer_id, max, deadline,
            FinishWith<v1::SuggestMergesResponse>(
                reactor, resp, [](v1::SuggestMergesResponse* out, v1::SuggestMergesResponse r) {
                  *out = std::move(r);
                }));
      });
  return reactor;
}

}  // namespace onestory::service
