#include "libs/engagement/customer_script.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"

namespace onestory::engagement {

void RunCustomerScript(const StoreContext& ctx, const std::string& tenant,
                       const v1::CustomerRef& ref, bool create_if_missing,
                       const redis::Script& script, std::vector<std::string> args,
                       int64_t now_ms, absl::Time deadline, Callback<ScriptResult> done) {
  if (create_if_missing && !ref.has_identifier()) {
    return done(absl::InvalidArgumentError(
        "create_if_missing: needs customer.identifier (a customer id cannot be created)"));
  }
  auto own_args = std::make_shared<std::vector<std::string>>(std::move(args));
  ctx.identity->ResolveRef(
      tenant, "customer", ref, create_if_missing, deadline,
      [ctx, tenant, &script, own_args, now_ms, deadline,
       done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
        if (!who.ok()) return done(who.status());
        std::string via = who->identifier.type() == v1::IDENTIFIER_TYPE_UNSPECIFIED
                              ? std::string()
                              : identity::IdentifierField(who->identifier);
        auto tag = std::make_shared<std::string>();
        identity::FollowMerges<ScriptResult>(
            who->customer_id,
            [ctx, tenant, &script, own_args, now_ms, deadline, via, tag](
                const std::string& customer_id, Callback<ScriptResult> cb) {
              std::vector<std::string> argv =
                  timeline::EffectArgs(tenant, customer_id, now_ms, *tag, via, ctx.policy);
              argv.insert(argv.end(), own_args->begin(), own_args->end());
              ctx.client->Eval(script, timeline::EffectKeys(tenant, customer_id), std::move(argv),
                               deadline,
                               [customer_id, now_ms, cb = std::move(cb)](
                                   absl::StatusOr<redis::Reply> r) mutable {
                                 if (!r.ok()) return cb(r.status());
                                 cb(ScriptResult{customer_id, now_ms, *std::move(r)});
                               });
            },
            std::move(done),
            [tag](const identity::Moved& m) {
              *tag = tag->empty() ? m.merge_id : absl::StrCat(*tag, ",", m.merge_id);
            });
      });
}

}  // namespace onestory::engagement
