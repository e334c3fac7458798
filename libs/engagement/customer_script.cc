#include "libs/engagement/customer_script.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"

namespace onestory::engagement {
namespace {

void RunResolved(std::shared_ptr<const CustomerCall> call, int64_t now_ms,
                 const identity::IdentityStore::Resolved& who, Callback<ScriptResult> done) {
  std::string via = who.identifier.type() == v1::IDENTIFIER_TYPE_UNSPECIFIED
                        ? std::string()
                        : identity::IdentifierField(who.identifier);
  auto tag = std::make_shared<std::string>();
  identity::FollowMerges<ScriptResult>(
      who.customer_id,
      [call, now_ms, via, tag](const std::string& customer_id, Callback<ScriptResult> cb) {
        (*call)(customer_id, *tag, via,
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

void RunCustomerCall(const StoreContext& ctx, const std::string& tenant, const v1::CustomerRef& ref,
                     bool create_if_missing, CustomerCall call, int64_t now_ms, absl::Time deadline,
                     Callback<ScriptResult> done, BeforeCreate before_create) {
  if (create_if_missing && !ref.has_identifier()) {
    return done(absl::InvalidArgumentError(
        "create_if_missing: needs customer.identifier (a customer id cannot be created)"));
  }
  auto shared = std::make_shared<const CustomerCall>(std::move(call));
  auto run = [shared, now_ms](absl::StatusOr<identity::IdentityStore::Resolved> who,
                              Callback<ScriptResult> done) {
    if (!who.ok()) return done(who.status());
    RunResolved(shared, now_ms, *who, std::move(done));
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
