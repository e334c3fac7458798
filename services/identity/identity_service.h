// IdentityService over gRPC: a thin layer that hands each call to libs/identity and libs/merge,
// plus the one policy that spans them: a Link of an identifier another customer owns merges the
// two customers on its own when the tenant trusts that identifier type (IdentityPolicy).
#pragma once

#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "libs/audit/audit_log.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/match_keys.h"
#include "libs/identity/merge_suggester.h"
#include "libs/merge/merge_engine.h"
#include "onestory/v1/identity.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

struct IdentityPolicy {
  // Tenant -> identifier types trusted to merge customers on their own when linked with
  // verification ONE_TIME_CODE or AUTHENTICATED; the tenant "*" applies to every tenant.
  absl::flat_hash_map<std::string, std::set<v1::IdentifierType>> auto_merge_types;
  // Shared identifiers (a store kiosk's device) that never merge nor suggest a merge.
  identity::MergeDenyList deny_list;

  // Parses --auto_merge_types: "acme=app_user_id+crm_id;*=app_user_id" (type names as in the
  // proto without the prefix, or as in keys: "app", "crm", ...). INVALID_ARGUMENT naming the
  // bad part.
  static absl::StatusOr<absl::flat_hash_map<std::string, std::set<v1::IdentifierType>>>
  ParseAutoMergeTypes(absl::string_view spec);

  bool TrustsToMerge(const std::string& tenant, v1::IdentifierType type) const;
};

class IdentityServiceImpl final : public v1::IdentityService::CallbackService {
 public:
  // `audit`: Merge and Unmerge write their STARTED entry there before acting and are refused
  // with UNAVAILABLE when it cannot be written (services/common/audit_interceptor.h); null: no
  // such entry.
  IdentityServiceImpl(identity::IdentityStore* store, merge::MergeEngine* merges,
                      identity::MergeSuggester* suggester, const Authenticator* auth,
                      IdentityPolicy policy, audit::AuditLog* audit = nullptr)
      : store_(store),
        auth_(auth),
        merges_(merges),
        suggester_(suggester),
        policy_(std::move(policy)),
        audit_(audit) {}

  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* ctx, const v1::ResolveRequest* req,
                                    v1::ResolveResponse* resp) override;
  grpc::ServerUnaryReactor* Link(grpc::CallbackServerContext* ctx, const v1::LinkRequest* req,
                                 v1::LinkResponse* resp) override;
  grpc::ServerUnaryReactor* Unlink(grpc::CallbackServerContext* ctx, const v1::UnlinkRequest* req,
                                   v1::UnlinkResponse* resp) override;
  grpc::ServerUnaryReactor* GetProfile(grpc::CallbackServerContext* ctx,
                                       const v1::GetProfileRequest* req,
                                       v1::GetProfileResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateProfile(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateProfileRequest* req,
                                          v1::UpdateProfileResponse* resp) override;
  grpc::ServerUnaryReactor* Merge(grpc::CallbackServerContext* ctx, const v1::MergeRequest* req,
                                  v1::MergeResponse* resp) override;
  grpc::ServerUnaryReactor* Unmerge(grpc::CallbackServerContext* ctx, const v1::UnmergeRequest* req,
                                    v1::UnmergeResponse* resp) override;
  grpc::ServerUnaryReactor* GetMergeHistory(grpc::CallbackServerContext* ctx,
                                            const v1::GetMergeHistoryRequest* req,
                                            v1::GetMergeHistoryResponse* resp) override;
  grpc::ServerUnaryReactor* SuggestMerges(grpc::CallbackServerContext* ctx,
                                          const v1::SuggestMergesRequest* req,
                                          v1::SuggestMergesResponse* resp) override;

 private:
  // Re-indexes the customers' profiles for suggestions after a merge or unmerge (best effort).
  void Reindex(const std::string& tenant, std::vector<std::string> customers);

  identity::IdentityStore* store_;
  const Authenticator* auth_;
  merge::MergeEngine* merges_;
  identity::MergeSuggester* suggester_;
  const IdentityPolicy policy_;
  audit::AuditLog* audit_;
};

}  // namespace onestory::service
