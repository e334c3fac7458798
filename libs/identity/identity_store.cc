#include "libs/identity/identity_store.h"

#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/identity/normalize.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/identity_check.h"
#include "libs/lua/identity_claim_over.h"
#include "libs/lua/identity_create.h"
#include "libs/lua/identity_get_profile.h"
#include "libs/lua/identity_link_precheck.h"
#include "libs/lua/identity_reclaim.h"
#include "libs/lua/identity_record_link.h"
#include "libs/lua/identity_unclaim.h"
#include "libs/lua/identity_unlink.h"
#include "libs/lua/identity_update_profile.h"
#include "libs/privacy/free_text.h"

namespace onestory::identity {
namespace {

using redis::Reply;
// The index-entry functions (libs/identity/lua/), filled.
lua::IdentityReclaim Reclaim(std::string index, std::string new_owner, std::string expected) {
  lua::IdentityReclaim call;
  call.index = std::move(index);
  call.new_owner = std::move(new_owner);
  call.expected_owner = std::move(expected);
  return call;
}

lua::IdentityUnclaim Unclaim(std::string index, std::string customer_id) {
  lua::IdentityUnclaim call;
  call.index = std::move(index);
  call.customer_id = std::move(customer_id);
  return call;
}

absl::StatusOr<v1::Profile> ProfileFromReply(const std::string& customer_id,
                                             absl::StatusOr<Reply> r) {
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 2) {
    return absl::InternalError("unexpected reply from the profile function");
  }
  return ProfileFromHashes(customer_id, r->elements[0], r->elements[1]);
}

absl::Status ValidateAttribute(absl::string_view field, absl::string_view key,
                               absl::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty key"));
  RETURN_IF_ERROR(ValidateText(absl::StrCat(field, " key"), key, kMaxAttributeKeyBytes, false));
  return ValidateText(absl::StrCat(field, "[", key, "]"), value, kMaxAttributeValueBytes);
}

// The Lua ops for an UpdateProfile, or INVALID_ARGUMENT: `values` as sent are checked against the
// limits, and `stored` (the same with its free text masked) gives the values written.
absl::StatusOr<std::vector<std::string>> BuildProfileOps(const v1::Profile& values,
                                                         const v1::Profile& stored,
                                                         const google::protobuf::FieldMask& mask,
                                                         int64_t now_ms) {
  if (mask.paths_size() == 0) {
    return absl::InvalidArgumentError(
        "update_mask: required; name the fields to change (display_name, language, tier, "
        "consents, attributes, attributes.<key>)");
  }
  if (mask.paths_size() > kMaxUpdateMaskPaths) {
    return absl::InvalidArgumentError(absl::StrCat("update_mask: at most ", kMaxUpdateMaskPaths,
                                                   " paths, got ", mask.paths_size()));
  }
  std::vector<std::string> clear_ops;  // 'clr' must precede the sets it makes room for
  std::vector<std::string> ops;
  auto add = [&](std::string op, std::string field, std::string value) {
    ops.push_back(std::move(op));
    ops.push_back(std::move(field));
    ops.push_back(std::move(value));
  };
  auto set_or_del = [&](std::string field, const std::string& value) {
    if (value.empty()) {
      add("del", std::move(field), "");
    } else {
      add("set", std::move(field), value);
    }
  };
  for (const std::string& path : mask.paths()) {
    if (path == "display_name") {
      RETURN_IF_ERROR(
          ValidateText("profile.display_name", values.display_name(), kMaxDisplayNameBytes, false));
      set_or_del("display_name", stored.display_name());
    } else if (path == "language") {
      RETURN_IF_ERROR(ValidateToken("profile.language", values.language(), kMaxLanguageBytes,
                                    /*allow_empty=*/true));
      set_or_del("language", values.language());
    } else if (path == "tier") {
      RETURN_IF_ERROR(ValidateText("profile.tier", values.tier(), kMaxTierBytes, false));
      set_or_del("tier", stored.tier());
    } else if (path == "consents") {
      std::vector<bool> seen(64, false);
      for (int i = 0; i < values.consents_size(); ++i) {
        const auto& c = values.consents(i);
        std::string f = absl::StrCat("profile.consents[", i, "]");
        if (c.channel() == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(c.channel())) {
          return absl::InvalidArgumentError(absl::StrCat(f, ".channel: unknown channel"));
        }
        if (c.state() == v1::CONSENT_STATE_UNSPECIFIED || !v1::ConsentState_IsValid(c.state())) {
          return absl::InvalidArgumentError(absl::StrCat(f, ".state: must be GRANTED or DENIED"));
        }
        if (seen[c.channel()]) {
          return absl::InvalidArgumentError(absl::StrCat(f, ".channel: listed twice"));
        }
        seen[c.channel()] = true;
        add("set", absl::StrCat(kConsentPrefix, static_cast<int>(c.channel())),
            absl::StrCat(static_cast<int>(c.state()), ":", now_ms));
      }
    } else if (path == "attributes") {
      if (values.attributes_size() > kMaxProfileAttributes) {
        return absl::InvalidArgumentError(
            absl::StrCat("profile.attributes: at most ", kMaxProfileAttributes, " entries"));
      }
      clear_ops = {"clr", "", ""};
      for (const auto& [k, v] : values.attributes()) {
        RETURN_IF_ERROR(ValidateAttribute("profile.attributes", k, v));
        add("set", absl::StrCat(kAttrPrefix, k), stored.attributes().at(k));
      }
    } else if (absl::StartsWith(path, "attributes.")) {
      std::string key = path.substr(strlen("attributes."));
      auto it = values.attributes().find(key);
      if (it == values.attributes().end()) {
        RETURN_IF_ERROR(ValidateAttribute("update_mask attributes", key, ""));
        add("del", absl::StrCat(kAttrPrefix, key), "");
      } else {
        RETURN_IF_ERROR(ValidateAttribute("profile.attributes", key, it->second));
        add("set", absl::StrCat(kAttrPrefix, key), stored.attributes().at(key));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "update_mask: unknown path '", path,
          "'; allowed: display_name, language, tier, consents, attributes, attributes.<key>"));
    }
  }
  clear_ops.insert(clear_ops.end(), ops.begin(), ops.end());
  return clear_ops;
}

}  // namespace

void IdentityStore::Resolve(const std::string& tenant, const v1::Identifier& identifier,
                            bool create_if_missing, absl::Time deadline, Callback<Resolved> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  absl::StatusOr<v1::Identifier> id =
      NormalizeIdentifier("identifier", identifier, DefaultCountryOf(tenant));
  if (!id.ok()) return done(id.status());
  std::string index_key = keys::IdentifierKey(tenant, id->type(), id->value());
  client_->Command(
      {"GET", index_key}, deadline,
      [this, tenant, id = *id, create_if_missing, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (r->is_string() && !create_if_missing) {
          return done(Resolved{r->str, false, std::move(id)});
        }
        if (r->is_string()) {
          // An index entry naming an erased customer (an erase under way: libs/privacy) is as
          // good as none: a new customer takes the identifier, never the erased one.
          std::string owner = r->str;
          client_->Command({"HEXISTS", keys::CustomerKeys(tenant, owner).profile(), "erased_at"},
                           deadline,
                           [this, tenant, id, owner, deadline,
                            done = std::move(done)](absl::StatusOr<Reply> erased) mutable {
                             if (!erased.ok()) return done(erased.status());
                             if (erased->integer == 0)
                               return done(Resolved{owner, false, std::move(id)});
                             CreateAndClaim(tenant, id, owner, deadline, std::move(done));
                           });
          return;
        }
        if (!create_if_missing) {
          return done(absl::NotFoundError(absl::StrCat(
              "no customer has ", keys::IdentifierTypeName(id.type()), " '", id.value(), "'")));
        }
        CreateAndClaim(tenant, id, "", deadline, std::move(done));
      });
}

void IdentityStore::CreateAndClaim(const std::string& tenant, const v1::Identifier& id,
                                   const std::string& erased_owner, absl::Time deadline,
                                   Callback<Resolved> done) {
  std::string customer_id = NewRandomId("cus_");
  keys::CustomerKeys ck(tenant, customer_id);
  int64_t now = NowMillis();
  lua::IdentityCreate create;
  create.profile = ck.profile();
  create.identifiers = ck.identifiers();
  create.now_ms = now;
  create.field = IdentifierField(id);
  client_->Fcall(create, deadline,
                 [this, tenant, id, customer_id, erased_owner, deadline,
                  done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                   if (!r.ok()) return done(r.status());
                   // The claim: SET NX, or, over an erased owner's entry, compare-and-set (either
                   // way the reply is the owner before: nil or the erased owner when ours now).
                   std::string index = keys::IdentifierKey(tenant, id.type(), id.value());
                   auto claimed = [this, tenant, id, customer_id, erased_owner,
                                   done = std::move(done)](absl::StatusOr<Reply> claim) mutable {
                     if (!claim.ok()) return done(claim.status());
                     if (claim->is_nil() || (!erased_owner.empty() && claim->str == erased_owner)) {
                       return done(Resolved{customer_id, true, std::move(id)});
                     }
                     // Another call claimed the identifier first: ours is unreachable; remove it.
                     keys::CustomerKeys ck(tenant, customer_id);
                     client_->Command({"DEL", ck.profile(), ck.identifiers()},
                                      absl::InfiniteFuture(), [](absl::StatusOr<Reply>) {});
                     done(Resolved{claim->str, false, std::move(id)});
                   };
                   if (erased_owner.empty()) {
                     return client_->Command({"SET", index, customer_id, "NX", "GET"}, deadline,
                                             std::move(claimed));
                   }
                   lua::IdentityClaimOver over;
                   over.index = index;
                   over.new_owner = customer_id;
                   over.erased_owner = erased_owner;
                   client_->Fcall(over, deadline, std::move(claimed));
                 });
}

void IdentityStore::ResolveRef(const std::string& tenant, absl::string_view field,
                               const v1::CustomerRef& ref, bool create_if_missing,
                               absl::Time deadline, Callback<Resolved> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  switch (ref.ref_case()) {
    case v1::CustomerRef::kCustomerId: {
      std::string f = absl::StrCat(field, ".customer_id");
      if (absl::Status st = ValidateCustomerId(f, ref.customer_id()); !st.ok()) return done(st);
      return done(Resolved{ref.customer_id(), false, {}});
    }
    case v1::CustomerRef::kIdentifier:
      return Resolve(
          tenant, ref.identifier(), create_if_missing, deadline,
          [field = std::string(field), done = std::move(done)](absl::StatusOr<Resolved> r) mutable {
            // Name the request field in validation errors.
            if (!r.ok() && r.status().code() == absl::StatusCode::kInvalidArgument &&
                absl::StartsWith(r.status().message(), "identifier")) {
              return done(
                  absl::InvalidArgumentError(absl::StrCat(field, ".", r.status().message())));
            }
            done(std::move(r));
          });
    default:
      return done(absl::InvalidArgumentError(
          absl::StrCat(field, ": required; set customer_id or identifier")));
  }
}

namespace {
constexpr char kOwnerPayload[] = "type.onestory/identifier_owner";
}  // namespace

std::string OwnerOf(const absl::Status& status) {
  auto owner = status.GetPayload(kOwnerPayload);
  return owner ? std::string(*owner) : std::string();
}

void IdentityStore::RootOf(const std::string& tenant, const std::string& customer_id,
                           absl::Time deadline, Callback<std::string> done) {
  FollowMerges<std::string>(
      customer_id,
      [this, tenant, deadline](const std::string& id, Callback<std::string> cb) {
        lua::IdentityCheck check;
        check.profile = keys::CustomerKeys(tenant, id).profile();
        check.customer_id = id;
        check.write = 0;
        client_->Fcall(check, deadline, [id, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
          if (!r.ok()) return cb(r.status());
          cb(id);
        });
      },
      std::move(done));
}

void IdentityStore::Link(const std::string& tenant, const std::string& customer_id,
                         const v1::Identifier& identifier, const LinkEvidence& evidence,
                         absl::Time deadline, Callback<Linked> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  absl::StatusOr<v1::Identifier> id =
      NormalizeIdentifier("identifier", identifier, DefaultCountryOf(tenant));
  if (!id.ok()) return done(id.status());
  if (!v1::Channel_IsValid(evidence.channel)) {
    return done(absl::InvalidArgumentError("channel: unknown value"));
  }
  if (!v1::Verification_IsValid(evidence.verification)) {
    return done(absl::InvalidArgumentError("verification: unknown value"));
  }
  if (!v1::Actor::Type_IsValid(evidence.actor.type())) {
    return done(absl::InvalidArgumentError("actor.type: unknown value"));
  }
  bool needs_id = evidence.actor.type() == v1::Actor::TYPE_AGENT ||
                  evidence.actor.type() == v1::Actor::TYPE_BOT;
  if (needs_id && evidence.actor.id().empty()) {
    return done(absl::InvalidArgumentError("actor.id: required for an agent or a bot"));
  }
  // As for an event's actor: printable ASCII without spaces.
  if (absl::Status st = ValidateToken("actor.id", evidence.actor.id(), 128, true); !st.ok()) {
    return done(st);
  }
  FollowMerges<Linked>(
      customer_id,
      [this, tenant, id = *id, evidence, deadline](const std::string& c, Callback<Linked> cb) {
        LinkOn(tenant, c, id, evidence, deadline, std::move(cb));
      },
      std::move(done));
}

void IdentityStore::LinkOn(const std::string& tenant, const std::string& customer_id,
                           const v1::Identifier& id, const LinkEvidence& evidence,
                           absl::Time deadline, Callback<Linked> done) {
  keys::CustomerKeys ck(tenant, customer_id);
  lua::IdentityLinkPrecheck precheck;
  precheck.profile = ck.profile();
  precheck.identifiers = ck.identifiers();
  precheck.customer_id = customer_id;
  precheck.field = IdentifierField(id);
  precheck.max_total = kMaxIdentifiersPerCustomer;
  precheck.max_per_type = kMaxIdentifiersPerType;
  precheck.type_name = std::string(keys::IdentifierTypeName(id.type()));
  client_->Fcall(
      precheck, deadline,
      [this, tenant, customer_id, id, evidence, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        std::string index_key = keys::IdentifierKey(tenant, id.type(), id.value());
        client_->Command(
            {"SET", index_key, customer_id, "NX", "GET"}, deadline,
            [this, tenant, customer_id, id, evidence, deadline, index_key,
             done = std::move(done)](absl::StatusOr<Reply> claim) mutable {
              if (!claim.ok()) return done(claim.status());
              if (!claim->is_string() || claim->str == customer_id) {
                bool claimed_now = !claim->is_string();
                return RecordLink(
                    tenant, customer_id, std::move(id), evidence, !claimed_now, deadline,
                    [this, index_key, customer_id, claimed_now, deadline,
                     done = std::move(done)](absl::StatusOr<Linked> r) mutable {
                      bool refused = !r.ok() && (r.status().code() == absl::StatusCode::kAborted ||
                                                 r.status().code() == absl::StatusCode::kNotFound ||
                                                 MovedTo(r.status()).has_value());
                      if (!refused || !claimed_now) return done(std::move(r));
                      // A merge took hold of the customer (or an erase removed it) between the
                      // two steps: give the claim back, so the identifier is not left with a
                      // customer that will not list it. The caller retries (ABORTED) or follows
                      // the merge.
                      client_->Fcall(Unclaim(index_key, customer_id), deadline,
                                     [r = std::move(r), done = std::move(done)](
                                         absl::StatusOr<Reply>) mutable { done(std::move(r)); });
                    });
              }
              // Another customer owns it — unless that one was merged into this one (an
              // identifier claimed while its owner was being merged): then it is ours.
              std::string owner = claim->str;
              RootOf(tenant, owner, deadline,
                     [this, tenant, customer_id, id = std::move(id), evidence, deadline, index_key,
                      owner, done = std::move(done)](absl::StatusOr<std::string> root) mutable {
                       // An erased owner (an erase under way) owns nothing: take it over.
                       bool erased = !root.ok() &&
                                     root.status().code() == absl::StatusCode::kNotFound &&
                                     absl::EndsWith(root.status().message(), " was erased");
                       if (erased) root = customer_id;
                       if (!root.ok() || *root != customer_id) {
                         absl::Status conflict = absl::FailedPreconditionError(
                             absl::StrCat(keys::IdentifierTypeName(id.type()), " '", id.value(),
                                          "' belongs to customer ", root.ok() ? *root : owner));
                         conflict.SetPayload(kOwnerPayload, absl::Cord(root.ok() ? *root : owner));
                         return done(conflict);
                       }
                       client_->Fcall(
                           Reclaim(index_key, customer_id, owner), deadline,
                           [this, tenant, customer_id, id = std::move(id), evidence, deadline,
                            index_key, owner,
                            done = std::move(done)](absl::StatusOr<Reply> moved) mutable {
                             if (!moved.ok()) return done(moved.status());
                             RecordLink(
                                 tenant, customer_id, std::move(id), evidence, true, deadline,
                                 [this, index_key, owner, customer_id, deadline,
                                  done = std::move(done)](absl::StatusOr<Linked> r) mutable {
                                   bool refused =
                                       !r.ok() &&
                                       (r.status().code() == absl::StatusCode::kAborted ||
                                        r.status().code() == absl::StatusCode::kNotFound ||
                                        MovedTo(r.status()).has_value());
                                   if (!refused) return done(std::move(r));
                                   // A merge took the customer meanwhile: put the entry back
                                   // where it was (its old owner still leads here).
                                   client_->Fcall(
                                       Reclaim(index_key, owner, customer_id), deadline,
                                       [r = std::move(r), done = std::move(done)](
                                           absl::StatusOr<Reply>) mutable { done(std::move(r)); });
                                 });
                           });
                     });
            });
      });
}

void IdentityStore::RecordLink(const std::string& tenant, const std::string& customer_id,
                               v1::Identifier id, const LinkEvidence& evidence, bool claimed_before,
                               absl::Time deadline, Callback<Linked> done) {
  int64_t now = NowMillis();
  v1::LinkEvidence e;
  e.set_channel(evidence.channel);
  v1::Verification verification = evidence.verification == v1::VERIFICATION_UNSPECIFIED
                                      ? v1::VERIFICATION_UNVERIFIED
                                      : evidence.verification;
  e.set_verification(verification);
  *e.mutable_linked_by() = evidence.actor;
  if (e.linked_by().type() == v1::Actor::TYPE_UNSPECIFIED) {
    e.mutable_linked_by()->set_type(v1::Actor::TYPE_SYSTEM);
  }
  *e.mutable_first_seen() = FromMillis(now);
  *e.mutable_last_seen() = FromMillis(now);
  keys::CustomerKeys ck(tenant, customer_id);
  // Filled before the call: the callback takes `id` by move.
  lua::IdentityRecordLink call;
  call.profile = ck.profile();
  call.identifiers = ck.identifiers();
  call.customer_id = customer_id;
  call.field = IdentifierField(id);
  call.evidence = EncodeEvidence(e);
  call.now_ms = absl::StrCat(now);
  call.verification = static_cast<int>(verification);
  client_->Fcall(call, deadline,
                 [customer_id, id = std::move(id), claimed_before,
                  done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                   if (!r.ok()) return done(r.status());
                   // already_linked only when both steps had been done before.
                   done(Linked{std::move(id), claimed_before && r->integer == 0, customer_id});
                 });
}

void IdentityStore::Unlink(const std::string& tenant, const std::string& customer_id,
                           const v1::Identifier& identifier, absl::Time deadline,
                           Callback<bool> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  absl::StatusOr<v1::Identifier> id =
      NormalizeIdentifier("identifier", identifier, DefaultCountryOf(tenant));
  if (!id.ok()) return done(id.status());
  FollowMerges<bool>(
      customer_id,
      [this, tenant, id = *id, deadline](const std::string& c, Callback<bool> cb) {
        lua::IdentityCheck check;
        check.profile = keys::CustomerKeys(tenant, c).profile();
        check.customer_id = c;
        check.write = 1;
        client_->Fcall(
            check, deadline,
            [this, tenant, c, id, deadline, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
              if (!r.ok()) return cb(r.status());
              UnlinkOn(tenant, c, id, deadline, std::move(cb));
            });
      },
      std::move(done));
}

void IdentityStore::UnlinkOn(const std::string& tenant, const std::string& customer_id,
                             const v1::Identifier& id, absl::Time deadline, Callback<bool> done) {
  client_->Fcall(
      Unclaim(keys::IdentifierKey(tenant, id.type(), id.value()), customer_id), deadline,
      [this, tenant, customer_id, id, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (r->is_string()) {
          return done(absl::FailedPreconditionError(
              absl::StrCat(keys::IdentifierTypeName(id.type()), " '", id.value(),
                           "' belongs to customer ", r->str, ", not ", customer_id)));
        }
        bool unclaimed = r->type == Reply::Type::kInteger && r->integer == 1;
        keys::CustomerKeys ck(tenant, customer_id);
        lua::IdentityUnlink unlink;
        unlink.profile = ck.profile();
        unlink.identifiers = ck.identifiers();
        unlink.field = IdentifierField(id);
        client_->Fcall(
            unlink, deadline,
            [customer_id, id, unclaimed, done = std::move(done)](absl::StatusOr<Reply> u) mutable {
              if (!u.ok()) return done(u.status());
              if (!u->is_array() || u->elements.size() != 2) {
                return done(absl::InternalError("unexpected reply from identity_unlink"));
              }
              if (u->elements[0].integer == 0) {
                return done(
                    absl::NotFoundError(absl::StrCat("customer ", customer_id, " not found")));
              }
              if (!unclaimed && u->elements[1].integer == 0) {
                return done(absl::NotFoundError(absl::StrCat("customer ", customer_id, " has no ",
                                                             keys::IdentifierTypeName(id.type()),
                                                             " '", id.value(), "'")));
              }
              done(true);
            });
      });
}

void IdentityStore::GetProfile(const std::string& tenant, const std::string& customer_id,
                               absl::Time deadline, Callback<v1::Profile> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  FollowMerges<v1::Profile>(
      customer_id,
      [this, tenant, deadline](const std::string& c, Callback<v1::Profile> cb) {
        keys::CustomerKeys ck(tenant, c);
        lua::IdentityGetProfile call;
        call.profile = ck.profile();
        call.identifiers = ck.identifiers();
        call.customer_id = c;
        client_->Fcall(call, deadline, [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
          cb(ProfileFromReply(c, std::move(r)));
        });
      },
      std::move(done));
}

void IdentityStore::UpdateProfile(const std::string& tenant, const std::string& customer_id,
                                  const v1::Profile& values,
                                  const google::protobuf::FieldMask& mask, absl::Time deadline,
                                  Callback<v1::Profile> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  int64_t now = NowMillis();
  absl::StatusOr<std::vector<std::string>> ops =
      BuildProfileOps(values, privacy::MaskedForStorage(redactor_, values), mask, now);
  if (!ops.ok()) return done(ops.status());
  FollowMerges<v1::Profile>(
      customer_id,
      [this, tenant, now, ops = *std::move(ops), deadline](const std::string& c,
                                                           Callback<v1::Profile> cb) {
        keys::CustomerKeys ck(tenant, c);
        lua::IdentityUpdateProfile call;
        call.profile = ck.profile();
        call.identifiers = ck.identifiers();
        call.customer_id = c;
        call.now_ms = now;
        call.max_attributes = kMaxProfileAttributes;
        call.ops = ops;
        client_->Fcall(call, deadline, [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
          cb(ProfileFromReply(c, std::move(r)));
        });
      },
      std::move(done));
}

}  // namespace onestory::identity
