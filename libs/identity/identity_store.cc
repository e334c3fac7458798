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
#include "libs/privacy/free_text.h"

namespace onestory::identity {
namespace {

using redis::Reply;
using redis::Script;

// KEYS: profile, identifiers. ARGV: now ms, identifier field.
// Creates the customer unless it exists. Returns 1 when created.
const Script kCreateCustomer("identity.create", R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
)lua");

// KEYS: profile, identifiers. ARGV: customer id.
const Script kGetProfile("identity.get_profile", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], false)
if err then return err end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
)lua"));

// KEYS: profile. ARGV: customer id. Checks the customer exists and was not merged.
const Script kGuardRead("identity.guard_read", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], false)
if err then return err end
return 1
)lua"));

// KEYS: profile. ARGV: customer id. Checks the customer takes writes.
const Script kGuardWrite("identity.guard_write", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], true)
if err then return err end
return 1
)lua"));

// KEYS: profile, identifiers. ARGV: customer id, identifier field, max identifiers, max per
// type, type name.
const Script kLinkPrecheck("identity.link_precheck", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], true)
if err then return err end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 1 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then
  return redis.error_reply('OS_LIMIT customer ' .. ARGV[1] .. ' already has ' .. ARGV[3] ..
                           ' identifiers')
end
local prefix, n = ARGV[5] .. ':', 0
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(f, 1, #prefix) == prefix then n = n + 1 end
end
if n >= tonumber(ARGV[4]) then
  return redis.error_reply('OS_LIMIT customer ' .. ARGV[1] .. ' already has ' .. ARGV[4] ..
                           ' identifiers of type ' .. ARGV[5])
end
return 1
)lua"));

// KEYS: profile, identifiers. ARGV: customer id, identifier field, evidence of a new link,
// now ms, verification. Records the link, or refreshes last_seen and raises the verification of
// an existing one. Returns 1 when the customer did not have the identifier.
const Script kRecordLink("identity.record_link", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], true)
if err then return err end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
local first, ver, rest = string.match(cur, '^v2|(%-?%d+)|%-?%d+|(%d+)|(.*)$')
if not first then first, ver, rest = cur, '1', '0|4|||' end
if tonumber(ARGV[5]) > tonumber(ver) then ver = ARGV[5] end
redis.call('HSET', KEYS[2], ARGV[2], 'v2|' .. first .. '|' .. ARGV[4] .. '|' .. ver .. '|' .. rest)
return 0
)lua"));

// KEYS: identifier index. ARGV: new owner, expected owner. Moves the identifier to the new
// owner when the expected one has it. Returns the owner before.
const Script kReclaim("identity.reclaim", R"lua(
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) end
return owner
)lua");

// KEYS: identifier index. ARGV: new owner, erased owner. Claims the identifier when nobody or
// the erased owner has it. Returns the owner before (nil when none).
const Script kClaimOver("identity.claim_over", R"lua(
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) end
return owner
)lua");

// KEYS: identifier index. ARGV: customer id.
// Deletes the index entry when it names the customer. Returns 1 when deleted, else the owner
// (or false when nobody owns it).
const Script kUnclaim("identity.unclaim", R"lua(
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return owner
)lua");

// KEYS: profile, identifiers. ARGV: identifier field.
// Returns {customer exists (0/1), field removed (0/1)}.
const Script kUnlinkFromCustomer("identity.unlink", R"lua(
local exists = redis.call('EXISTS', KEYS[1])
local removed = redis.call('HDEL', KEYS[2], ARGV[1])
return {exists, removed}
)lua");

// KEYS: profile, identifiers. ARGV: customer id, now ms, max attributes, then (op, field, value)
// triples: 'set' field value | 'del' field - | 'clr' - - (removes every attr: field).
// Checks the attribute limit before writing anything.
const Script kUpdateProfile("identity.update_profile", absl::StrCat(kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], true)
if err then return err end
local attrs, count, original = {}, 0, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 5) == 'attr:' then
    attrs[all[i]] = true
    original[#original + 1] = all[i]
    count = count + 1
  end
end
for i = 4, #ARGV, 3 do
  local op, f = ARGV[i], ARGV[i + 1]
  if op == 'clr' then
    for k in pairs(attrs) do attrs[k] = nil end
    count = 0
  elseif op == 'set' and string.sub(f, 1, 5) == 'attr:' and not attrs[f] then
    attrs[f] = true
    count = count + 1
  elseif op == 'del' and attrs[f] then
    attrs[f] = nil
    count = count - 1
  end
end
if count > tonumber(ARGV[3]) then
  return redis.error_reply('OS_INVALID profile.attributes: at most ' .. ARGV[3] .. ' entries')
end
for i = 4, #ARGV, 3 do
  local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'clr' then
    if #original > 0 then redis.call('HDEL', KEYS[1], unpack(original)) end
  elseif op == 'set' then
    redis.call('HSET', KEYS[1], f, v)
  elseif op == 'del' then
    redis.call('HDEL', KEYS[1], f)
  end
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
)lua"));

absl::StatusOr<v1::Profile> ProfileFromReply(const std::string& customer_id,
                                             absl::StatusOr<Reply> r) {
  if (!r.ok()) return r.status();
  if (!r->is_array() || r->elements.size() != 2) {
    return absl::InternalError("unexpected reply from profile script");
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
  client_->Eval(kCreateCustomer, {ck.profile(), ck.identifiers()},
                {absl::StrCat(now), IdentifierField(id)}, deadline,
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
                  client_->Eval(kClaimOver, {index}, {customer_id, erased_owner}, deadline,
                                std::move(claimed));
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
        keys::CustomerKeys ck(tenant, id);
        client_->Eval(kGuardRead, {ck.profile()}, {id}, deadline,
                      [id, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
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
  std::string type_name(keys::IdentifierTypeName(id.type()));
  client_->Eval(
      kLinkPrecheck, {ck.profile(), ck.identifiers()},
      {customer_id, IdentifierField(id), absl::StrCat(kMaxIdentifiersPerCustomer),
       absl::StrCat(kMaxIdentifiersPerType), type_name},
      deadline,
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
                      client_->Eval(kUnclaim, {index_key}, {customer_id}, deadline,
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
                       client_->Eval(
                           kReclaim, {index_key}, {customer_id, owner}, deadline,
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
                                   client_->Eval(
                                       kReclaim, {index_key}, {owner, customer_id}, deadline,
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
  // Built before the call: the callback takes `id` by move.
  std::vector<std::string> args = {customer_id, IdentifierField(id), EncodeEvidence(e),
                                   absl::StrCat(now), absl::StrCat(static_cast<int>(verification))};
  client_->Eval(kRecordLink, {ck.profile(), ck.identifiers()}, std::move(args), deadline,
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
        keys::CustomerKeys ck(tenant, c);
        client_->Eval(
            kGuardWrite, {ck.profile()}, {c}, deadline,
            [this, tenant, c, id, deadline, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
              if (!r.ok()) return cb(r.status());
              UnlinkOn(tenant, c, id, deadline, std::move(cb));
            });
      },
      std::move(done));
}

void IdentityStore::UnlinkOn(const std::string& tenant, const std::string& customer_id,
                             const v1::Identifier& id, absl::Time deadline, Callback<bool> done) {
  client_->Eval(
      kUnclaim, {keys::IdentifierKey(tenant, id.type(), id.value())}, {customer_id}, deadline,
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
        client_->Eval(
            kUnlinkFromCustomer, {ck.profile(), ck.identifiers()}, {IdentifierField(id)}, deadline,
            [customer_id, id, unclaimed, done = std::move(done)](absl::StatusOr<Reply> u) mutable {
              if (!u.ok()) return done(u.status());
              if (!u->is_array() || u->elements.size() != 2) {
                return done(absl::InternalError("unexpected reply from unlink script"));
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
        client_->Eval(kGetProfile, {ck.profile(), ck.identifiers()}, {c}, deadline,
                      [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
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
      BuildProfileOps(values, privacy::MaskedForStorage(values), mask, now);
  if (!ops.ok()) return done(ops.status());
  FollowMerges<v1::Profile>(
      customer_id,
      [this, tenant, now, ops = *std::move(ops), deadline](const std::string& c,
                                                           Callback<v1::Profile> cb) {
        std::vector<std::string> args = {c, absl::StrCat(now), absl::StrCat(kMaxProfileAttributes)};
        args.insert(args.end(), ops.begin(), ops.end());
        keys::CustomerKeys ck(tenant, c);
        client_->Eval(kUpdateProfile, {ck.profile(), ck.identifiers()}, std::move(args), deadline,
                      [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                        cb(ProfileFromReply(c, std::move(r)));
                      });
      },
      std::move(done));
}

}  // namespace onestory::identity
