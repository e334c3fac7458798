#include "libs/engagement/records.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json_value.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

// A member's value when it has the type asked for; "", 0 or false otherwise (absent included).
std::string Str(const Record& r, absl::string_view key) {
  const JsonValue* v = r.Find(key);
  return v != nullptr ? v->string() : std::string();
}

int64_t Num(const Record& r, absl::string_view key) {
  const JsonValue* v = r.Find(key);
  if (v == nullptr) return 0;
  // Beyond int64's range (never written; a damaged record) the conversion is undefined: 0.
  const double n = v->number();
  return n > -9.2e18 && n < 9.2e18 ? static_cast<int64_t>(n) : 0;
}

bool Bool(const Record& r, absl::string_view key) {
  const JsonValue* v = r.Find(key);
  return v != nullptr && v->boolean();
}

// An actor stored as "<prefix>t" (type number) and "<prefix>i" (id); false when none. The
// prefixes are one character.
bool ActorFrom(const Record& r, char prefix, v1::Actor* out) {
  const char type_key[2] = {prefix, 't'}, id_key[2] = {prefix, 'i'};
  int64_t type = Num(r, absl::string_view(type_key, 2));
  if (type <= 0 || !v1::Actor::Type_IsValid(static_cast<int>(type))) return false;
  out->set_type(static_cast<v1::Actor::Type>(type));
  out->set_id(Str(r, absl::string_view(id_key, 2)));
  return true;
}

void SetTime(int64_t ms, google::protobuf::Timestamp* ts) {
  if (ms > 0) *ts = FromMillis(ms);
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<Record> ParseRecord(absl::string_view json) {
  absl::StatusOr<Record> s = ParseJsonObject(json);
  if (!s.ok()) return absl::InternalError(absl::StrCat("malformed record: ", s.status().message()));
  return s;
}

v1::Conversation ConversationFromRecord(const std::string& conversation_id,
                                        const std::string& customer_id, const Record& r) {
  v1::Conversation c;
  c.set_conversation_id(conversation_id);
  c.set_customer_id(customer_id);
  c.set_channel(static_cast<v1::Channel>(Num(r, "ch")));
  if (!ActorFrom(r, 'b', c.mutable_served_by())) c.clear_served_by();
  c.set_state(Str(r, "s") == "e" ? v1::CONVERSATION_STATE_ENDED : v1::CONVERSATION_STATE_OPEN);
  c.set_case_id(Str(r, "ca"));
  SetTime(Num(r, "st"), c.mutable_started_at());
  if (Num(r, "en") > 0) SetTime(Num(r, "en"), c.mutable_ended_at());
  c.set_handoffs(static_cast<int32_t>(Num(r, "h")));
  c.set_outcome(Str(r, "oc"));
  c.set_wrap_up_code(Str(r, "wc"));
  c.set_repeat_contact(Bool(r, "rp"));
  return c;
}

v1::Case CaseFromRecord(const std::string& case_id, const std::string& customer_id,
                        const Record& r) {
  v1::Case c;
  c.set_case_id(case_id);
  c.set_customer_id(customer_id);
  c.set_topic(Str(r, "tp"));
  c.set_stage(Str(r, "sg"));
  c.set_state(Str(r, "s") == "o" ? v1::CASE_STATE_OPEN : v1::CASE_STATE_RESOLVED);
  if (!ActorFrom(r, 'o', c.mutable_owner())) c.clear_owner();
  SetTime(Num(r, "op"), c.mutable_opened_at());
  SetTime(Num(r, "se"), c.mutable_stage_entered_at());
  SetTime(Num(r, "up"), c.mutable_updated_at());
  if (Num(r, "rs") > 0) SetTime(Num(r, "rs"), c.mutable_resolved_at());
  c.set_resolution(Str(r, "rn"));
  if (Num(r, "pb") > 0) {
    v1::Promise* p = c.mutable_promise();
    p->set_text(Str(r, "pt"));
    SetTime(Num(r, "pb"), p->mutable_promised_by());
    if (!ActorFrom(r, 'm', p->mutable_made_by())) p->clear_made_by();
    SetTime(Num(r, "pm"), p->mutable_made_at());
  }
  c.set_contacts(static_cast<int32_t>(Num(r, "nc")));
  c.set_repeat_contacts(static_cast<int32_t>(Num(r, "rc")));
  c.set_channel_switches(static_cast<int32_t>(Num(r, "sw")));
  c.set_last_channel(static_cast<v1::Channel>(Num(r, "lc")));
  if (const JsonValue* oh = r.Find("oh"); oh != nullptr) {
    for (const JsonValue& x : oh->items()) {
      if (!x.is_object()) continue;
      v1::OwnerChange* ch = c.add_owner_history();
      if (!ActorFrom(x, 'f', ch->mutable_from())) ch->clear_from();
      if (!ActorFrom(x, 't', ch->mutable_to())) ch->clear_to();
      ch->set_reason(Str(x, "r"));
      if (!ActorFrom(x, 'b', ch->mutable_by())) ch->clear_by();
      SetTime(Num(x, "at"), ch->mutable_at());
    }
  }
  c.set_owner_changes(static_cast<int32_t>(Num(r, "ohn")));
  c.set_last_note(Str(r, "ln"));
  c.set_last_note_visibility(static_cast<v1::Audience>(Num(r, "lv")));
  return c;
}

v1::Fact FactFromRecord(const Record& r) {
  v1::Fact f;
  f.set_type(static_cast<v1::FactType>(Num(r, "t")));
  f.set_name(Str(r, "n"));
  f.set_value(Str(r, "v"));
  if (Num(r, "ex") > 0) SetTime(Num(r, "ex"), f.mutable_expires_at());
  if (Num(r, "du") > 0) SetTime(Num(r, "du"), f.mutable_due_at());
  f.set_case_id(Str(r, "ca"));
  f.set_conversation_id(Str(r, "cv"));
  f.set_visibility(static_cast<v1::Audience>(Num(r, "vi")));
  if (!ActorFrom(r, 'r', f.mutable_recorded_by())) f.clear_recorded_by();
  f.set_channel(static_cast<v1::Channel>(Num(r, "ch")));
  SetTime(Num(r, "ra"), f.mutable_recorded_at());
  SetTime(Num(r, "fa"), f.mutable_first_recorded_at());
  f.set_times_stated(static_cast<int32_t>(Num(r, "ts")));
  f.set_previous_value(Str(r, "pv"));
  return f;
}

v1::RepeatContact RepeatFromRecord(const Record& r) {
  v1::RepeatContact rc;
  rc.set_case_id(Str(r, "ca"));
  rc.set_topic(Str(r, "tp"));
  rc.set_message(absl::StrCat("contacting again about ", rc.topic()));
  rc.set_contacts(static_cast<int32_t>(Num(r, "n")));
  rc.set_case_open(Bool(r, "o"));
  rc.set_conversation_id(Str(r, "cv"));
  SetTime(Num(r, "at"), rc.mutable_at());
  return rc;
}

void AckFromRecord(const Record& r, v1::Alert* alert) {
  alert->set_acknowledged(true);
  if (!ActorFrom(r, 'b', alert->mutable_acknowledged_by())) alert->clear_acknowledged_by();
  *alert->mutable_acknowledged_at() = FromMillis(Num(r, "at"));
}

int FactRank(v1::FactType type) {
  switch (type) {
    case v1::FACT_TYPE_VERIFICATION:
      return 0;
    case v1::FACT_TYPE_PROMISE:
      return 1;
    case v1::FACT_TYPE_COLLECTED:
      return 2;
    default:
      return 3;
  }
}

absl::Status ValidateFuture(absl::string_view field, const google::protobuf::Timestamp& ts,
                            int64_t now_ms) {
  if (ts.nanos() < 0 || ts.nanos() > 999999999 || ts.seconds() < 0 || ts.seconds() > 253402300799) {
    return Invalid(field, "not a valid time between 1970 and 9999");
  }
  if (ToMillis(ts) <= now_ms) return Invalid(field, "must be in the future");
  return absl::OkStatus();
}

absl::Status ValidateActor(absl::string_view field, const v1::Actor& actor, bool required) {
  if (!required && actor.type() == v1::Actor::TYPE_UNSPECIFIED && actor.id().empty()) {
    return absl::OkStatus();
  }
  if (actor.type() == v1::Actor::TYPE_UNSPECIFIED || !v1::Actor::Type_IsValid(actor.type())) {
    return Invalid(absl::StrCat(field, ".type"), "required; CUSTOMER, AGENT, BOT or SYSTEM");
  }
  bool id_required = actor.type() == v1::Actor::TYPE_AGENT || actor.type() == v1::Actor::TYPE_BOT;
  return ValidateToken(absl::StrCat(field, ".id"), actor.id(), timeline::kMaxRefIdBytes,
                       !id_required);
}

absl::Status ValidateChannel(absl::string_view field, int channel, bool required) {
  if (channel == v1::CHANNEL_UNSPECIFIED && !required) return absl::OkStatus();
  if (channel == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(channel)) {
    return Invalid(field, "required; one of the Channel values");
  }
  return absl::OkStatus();
}

absl::Status ValidateVisibility(absl::string_view field, int visibility) {
  if (!v1::Audience_IsValid(visibility)) return Invalid(field, "unknown Audience value");
  return absl::OkStatus();
}

absl::Status ValidateStage(absl::string_view field, absl::string_view stage) {
  if (stage.empty() || stage.size() > kMaxStageBytes) {
    return Invalid(field, "1-64 characters of [a-z0-9_-]");
  }
  for (char c : stage) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-')) {
      return Invalid(field, "1-64 characters of [a-z0-9_-]");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFact(absl::string_view field, const v1::Fact& f, int64_t now_ms) {
  if (f.type() == v1::FACT_TYPE_UNSPECIFIED || !v1::FactType_IsValid(f.type())) {
    return Invalid(absl::StrCat(field, ".type"),
                   "required; VERIFICATION, COLLECTED, STEP_TRIED or PROMISE");
  }
  std::string name_field = absl::StrCat(field, ".name");
  if (f.name().empty() || f.name().size() > 64) {
    return Invalid(name_field, "1-64 characters of [a-z0-9_.-]");
  }
  for (char c : f.name()) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '-')) {
      return Invalid(name_field, "1-64 characters of [a-z0-9_.-]");
    }
  }
  RETURN_IF_ERROR(ValidateText(absl::StrCat(field, ".value"), f.value(), kMaxFactValueBytes));
  if (f.has_expires_at()) {
    RETURN_IF_ERROR(ValidateFuture(absl::StrCat(field, ".expires_at"), f.expires_at(), now_ms));
  } else if (f.type() == v1::FACT_TYPE_VERIFICATION) {
    return Invalid(absl::StrCat(field, ".expires_at"), "required for a VERIFICATION");
  }
  if (f.has_due_at()) {
    if (f.type() != v1::FACT_TYPE_PROMISE) {
      return Invalid(absl::StrCat(field, ".due_at"), "only for a PROMISE");
    }
    RETURN_IF_ERROR(ValidateFuture(absl::StrCat(field, ".due_at"), f.due_at(), now_ms));
  } else if (f.type() == v1::FACT_TYPE_PROMISE) {
    return Invalid(absl::StrCat(field, ".due_at"), "required for a PROMISE");
  }
  RETURN_IF_ERROR(
      ValidateToken(absl::StrCat(field, ".case_id"), f.case_id(), timeline::kMaxRefIdBytes, true));
  RETURN_IF_ERROR(ValidateToken(absl::StrCat(field, ".conversation_id"), f.conversation_id(),
                                timeline::kMaxRefIdBytes, true));
  return ValidateVisibility(absl::StrCat(field, ".visibility"), f.visibility());
}

}  // namespace onestory::engagement
