#include "libs/context/context_store.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/event_validation.h"
#include "libs/timeline/stream_entry.h"
#include "libs/timeline/timeline_store.h"

namespace onestory::context {
namespace {

using redis::Reply;

// The snapshot GetContext reads (one MULTI/EXEC), in this order.
enum Read {
  kProfile,         // HGETALL profile (the guard reads it too)
  kIdentifiers,     // HGETALL identifiers
  kEvents,          // XREVRANGE timeline, the latest events
  kConversations,   // HGETALL conversations: id -> "<first ms>|<last ms>|<events>|<channel>"
  kTimelineLength,  // XLEN timeline
  kCases,           // HGETALL cases
  kFacts,           // HGETALL facts
  kContacts7d,      // ZCOUNT contacts since 7 days
  kContacts30d,     // ZCOUNT contacts since 30 days
  kChannels30d,     // ZCOUNT contact_channels since 30 days
  kSignals,         // HGETALL signals
  kReads,
};

std::vector<std::vector<std::string>> SnapshotCommands(const keys::CustomerKeys& ck, int recent,
                                                       int64_t now_ms) {
  constexpr int64_t kDay = 86400000;
  std::vector<std::vector<std::string>> c(kReads);
  c[kProfile] = {"HGETALL", ck.profile()};
  c[kIdentifiers] = {"HGETALL", ck.identifiers()};
  c[kEvents] = {"XREVRANGE", ck.timeline(), "+", "-", "COUNT", absl::StrCat(recent)};
  c[kConversations] = {"HGETALL", ck.conversations()};
  c[kTimelineLength] = {"XLEN", ck.timeline()};
  c[kCases] = {"HGETALL", ck.cases()};
  c[kFacts] = {"HGETALL", ck.facts()};
  c[kContacts7d] = {"ZCOUNT", ck.contacts(), absl::StrCat(now_ms - 7 * kDay), "+inf"};
  c[kContacts30d] = {"ZCOUNT", ck.contacts(), absl::StrCat(now_ms - 30 * kDay), "+inf"};
  c[kChannels30d] = {"ZCOUNT", ck.contact_channels(), absl::StrCat(now_ms - 30 * kDay), "+inf"};
  c[kSignals] = {"HGETALL", ck.signals()};
  return c;
}

// The snapshot, read in place (Client::Snapshot's in_place). The latest events, most of its
// bytes, stay there and are serialized from them (AddVisible); the rest, a few small hashes and
// counts, is copied into Replies.
struct Snapshot {
  // XREVRANGE's items.
  redis::RespView::Value events() const { return view->root()[kEvents]; }

  std::shared_ptr<const redis::RespView> view;
  Reply parts;  // an array of one reply per Read; kEvents's is nil (see events())
};

absl::StatusOr<std::shared_ptr<const Snapshot>> ReadSnapshot(Reply r) {
  if (r.type != Reply::Type::kArrayView) {
    return absl::InternalError("unexpected reply to GetContext's reads");
  }
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->view = std::move(r.view);
  redis::RespView::Value root = snapshot->view->root();
  if (!root.is_array() || root.size() != kReads) {
    return absl::InternalError("unexpected reply to GetContext's reads");
  }
  std::vector<Reply>& parts = snapshot->parts.elements;
  snapshot->parts.type = Reply::Type::kArray;
  parts.reserve(kReads);
  for (redis::RespView::Value part : root) {
    if (part.type() == Reply::Type::kError) {
      return absl::InternalError(absl::StrCat("redis: ", part.str()));
    }
    parts.push_back(parts.size() == kEvents ? Reply() : part.ToReply());
  }
  return snapshot;
}

// The conversations shown as open (active within kOpenConversationIdleMs), most recent first;
// their records are read after the snapshot.
std::vector<v1::OpenConversation> OpenConversations(const Reply& conversations, int64_t now_ms) {
  std::vector<v1::OpenConversation> open;
  const auto& cv = conversations.elements;
  for (size_t i = 0; i + 1 < cv.size(); i += 2) {
    std::vector<absl::string_view> parts = absl::StrSplit(cv[i + 1].str, '|');
    int64_t first = 0, last = 0, count = 0;
    int channel = 0;
    if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &first) ||
        !absl::SimpleAtoi(parts[1], &last) || !absl::SimpleAtoi(parts[2], &count) ||
        !absl::SimpleAtoi(parts[3], &channel)) {
      continue;
    }
    if (last < now_ms - kOpenConversationIdleMs) continue;
    v1::OpenConversation& c = open.emplace_back();
    c.set_conversation_id(cv[i].str);
    c.set_channel(static_cast<v1::Channel>(channel));
    *c.mutable_started_at() = FromMillis(first);
    *c.mutable_last_activity_at() = FromMillis(last);
    c.set_event_count(count);
  }
  std::sort(open.begin(), open.end(), [](const auto& a, const auto& b) {
    return ToMillis(a.last_activity_at()) > ToMillis(b.last_activity_at());
  });
  return open;
}

// Whether a stored case record is open, or resolved within 30 days (a repeat-contact flag may
// still name it): only those are decoded.
bool OpenOrRecent(absl::string_view record, int64_t now_ms) {
  if (absl::StrContains(record, "\"s\":\"o\"")) return true;
  size_t at = record.find("\"rs\":");
  if (at == absl::string_view::npos) return false;
  absl::string_view digits = record.substr(at + 5);
  digits = digits.substr(0, digits.find_first_not_of("0123456789"));
  int64_t resolved = 0;
  return absl::SimpleAtoi(digits, &resolved) && resolved > now_ms - int64_t{30} * 86400000;
}

// Everything GetContext shows but the latest events, which may need more reads (FillEvents):
// from the snapshot `r`, the open conversations and their records (HMGET, in their order).
absl::StatusOr<v1::GetContextResponse> BuildContext(const std::string& customer_id, const Reply& r,
                                                    std::vector<v1::OpenConversation> open,
                                                    const Reply& records, int64_t now_ms,
                                                    v1::Audience audience,
                                                    absl::Duration repeat_window) {
  v1::GetContextResponse resp;
  *resp.mutable_profile() =
      identity::ProfileFromHashes(customer_id, r.elements[kProfile], r.elements[kIdentifiers]);
  // Per-channel activity lives in the profile hash as act:<channel> -> ms.
  const auto& pf = r.elements[kProfile].elements;
  for (size_t i = 0; i + 1 < pf.size(); i += 2) {
    absl::string_view name = pf[i].str;
    int channel = 0;
    int64_t ms = 0;
    if (absl::StartsWith(name, identity::kActivityPrefix) &&
        absl::SimpleAtoi(name.substr(identity::kActivityPrefix.size()), &channel) &&
        absl::SimpleAtoi(pf[i + 1].str, &ms)) {
      v1::ChannelActivity* a = resp.add_channels();
      a->set_channel(static_cast<v1::Channel>(channel));
      *a->mutable_at() = FromMillis(ms);
    }
  }
  std::sort(resp.mutable_channels()->begin(), resp.mutable_channels()->end(),
            [](const auto& a, const auto& b) { return ToMillis(a.at()) > ToMillis(b.at()); });
  if (resp.channels_size() > 0) *resp.mutable_last_activity() = resp.channels(0);
  for (size_t i = 0; i < open.size(); ++i) {
    v1::OpenConversation* c = resp.add_open_conversations();
    *c = std::move(open[i]);
    if (i < records.elements.size() && records.elements[i].is_string()) {
      ASSIGN_OR_RETURN(engagement::Record s,
                       engagement::ParseRecord(records.elements[i].str));
      v1::Conversation conv =
          engagement::ConversationFromRecord(c->conversation_id(), customer_id, s);
      if (conv.has_served_by()) *c->mutable_served_by() = conv.served_by();
      c->set_case_id(conv.case_id());
      c->set_handoffs(conv.handoffs());
    }
  }
  resp.set_total_events(r.elements[kTimelineLength].integer);

  // Cases: the open ones, latest update first; resolved ones only back the repeat flag.
  absl::flat_hash_map<std::string, v1::Case> resolved;
  v1::EffortSignals* sig = resp.mutable_signals();
  int64_t oldest_open = 0;
  const auto& cases = r.elements[kCases].elements;
  for (size_t i = 0; i + 1 < cases.size(); i += 2) {
    if (!OpenOrRecent(cases[i + 1].str, now_ms)) continue;
    ASSIGN_OR_RETURN(engagement::Record s, engagement::ParseRecord(cases[i + 1].str));
    v1::Case c = engagement::CaseFromRecord(cases[i].str, customer_id, s);
    c.clear_owner_history();  // GetCase has it; the screen pop shows the owner
    if (!timeline::VisibleTo(c.last_note_visibility(), audience)) {
      c.clear_last_note();
      c.clear_last_note_visibility();
    }
    if (c.state() != v1::CASE_STATE_OPEN) {
      resolved.emplace(c.case_id(), std::move(c));
      continue;
    }
    int64_t opened = ToMillis(c.opened_at());
    if (oldest_open == 0 || opened < oldest_open) oldest_open = opened;
    sig->set_channel_switches(sig->channel_switches() + c.channel_switches());
    sig->set_repeat_contacts(sig->repeat_contacts() + c.repeat_contacts());
    *resp.add_open_cases() = std::move(c);
  }
  std::sort(resp.mutable_open_cases()->begin(), resp.mutable_open_cases()->end(),
            [](const auto& a, const auto& b) {
              return ToMillis(a.updated_at()) > ToMillis(b.updated_at());
            });
  if (oldest_open > 0) {
    *sig->mutable_since_case_opened() = google::protobuf::util::TimeUtil::MillisecondsToDuration(
        std::max<int64_t>(0, now_ms - oldest_open));
  }

  // Facts: current and visible, verifications first, then promises, collected values, steps.
  const auto& facts = r.elements[kFacts].elements;
  for (size_t i = 0; i + 1 < facts.size(); i += 2) {
    ASSIGN_OR_RETURN(engagement::Record s, engagement::ParseRecord(facts[i + 1].str));
    v1::Fact f = engagement::FactFromRecord(s);
    if (f.has_expires_at() && ToMillis(f.expires_at()) <= now_ms) continue;
    if (!timeline::VisibleTo(f.visibility(), audience)) continue;
    *resp.add_facts() = std::move(f);
  }
  std::sort(resp.mutable_facts()->begin(), resp.mutable_facts()->end(),
            [](const v1::Fact& a, const v1::Fact& b) {
              int ra = engagement::FactRank(a.type()), rb = engagement::FactRank(b.type());
              if (ra != rb) return ra < rb;
              return ToMillis(a.recorded_at()) > ToMillis(b.recorded_at());
            });

  sig->set_contacts_7d(static_cast<int32_t>(r.elements[kContacts7d].integer));
  sig->set_contacts_30d(static_cast<int32_t>(r.elements[kContacts30d].integer));
  sig->set_distinct_channels_30d(static_cast<int32_t>(r.elements[kChannels30d].integer));
  // Signals: "p:<day>"/"n:<day>" counts, "streak", "repeat" (the latest repeat contact).
  const auto& sg = r.elements[kSignals].elements;
  int64_t today = now_ms / 86400000;
  for (size_t i = 0; i + 1 < sg.size(); i += 2) {
    absl::string_view name = sg[i].str;
    const std::string& value = sg[i + 1].str;
    int64_t day = 0, n = 0;
    if (name.size() > 2 && (name[0] == 'p' || name[0] == 'n') && name[1] == ':' &&
        absl::SimpleAtoi(name.substr(2), &day) && absl::SimpleAtoi(value, &n)) {
      if (day <= today - 30) continue;
      if (name[0] == 'p') sig->set_positive_30d(sig->positive_30d() + n);
      if (name[0] == 'n') sig->set_negative_30d(sig->negative_30d() + n);
    } else if (name == "streak") {
      absl::SimpleAtoi(value, &n);
      sig->set_negative_streak(static_cast<int32_t>(n));
    } else if (name == "repeat") {
      ASSIGN_OR_RETURN(engagement::Record s, engagement::ParseRecord(value));
      v1::RepeatContact rc = engagement::RepeatFromRecord(s);
      bool open = false;
      for (const v1::Case& c : resp.open_cases()) open = open || c.case_id() == rc.case_id();
      auto it = resolved.find(rc.case_id());
      bool recent = it != resolved.end() && ToMillis(it->second.resolved_at()) >=
                                                now_ms - absl::ToInt64Milliseconds(repeat_window);
      if (open || recent) {
        rc.set_case_open(open);
        *resp.mutable_repeat_contact() = std::move(rc);
      }
    }
  }
  if (sig->negative_30d() > 0) {
    sig->set_positive_to_negative(static_cast<double>(sig->positive_30d()) /
                                  static_cast<double>(sig->negative_30d()));
  }
  return resp;
}

struct ContextRead {
  ContextRead(std::string tenant, std::string customer_id)
      : tenant(std::move(tenant)),
        customer_id(std::move(customer_id)),
        cursors(this->customer_id) {}

  std::string tenant;
  std::string customer_id;
  timeline::CursorWriter cursors;  // of customer_id's events
  int count = 0;
  v1::Audience audience = v1::AUDIENCE_AGENT;
  int examined = 0;
  int added = 0;  // events in response
  absl::Time deadline;
  v1::GetContextResponse response;
  Callback<v1::GetContextResponse> done;
};

// Adds the visible events among `entries` (XREVRANGE items, newest first: Replies, or a
// RespView::Value read in place), serialized (see context_store.h); true when `count` are there.
template <typename Entries>
absl::StatusOr<bool> AddVisible(ContextRead& read, const Entries& entries) {
  google::protobuf::UnknownFieldSet* serialized =
      read.response.GetReflection()->MutableUnknownFields(&read.response);
  for (const auto& entry : entries) {
    if (read.added >= read.count) return true;
    ++read.examined;
    ASSIGN_OR_RETURN(timeline::StreamEntryView stored, timeline::ParseStreamEntryView(entry));
    ASSIGN_OR_RETURN(v1::Audience visibility, stored.Visibility());
    if (!timeline::VisibleTo(visibility, read.audience)) continue;
    stored.AppendSerializedEvent(
        read.cursors,
        serialized->AddLengthDelimited(v1::GetContextResponse::kRecentEventsFieldNumber));
    ++read.added;
  }
  return read.added >= read.count;
}

// Reads older events until `count` visible ones are found, the timeline ends, or 2,000 were
// examined (only when many of the latest events are hidden from the reader).
void ReadOlder(redis::Client* client, std::shared_ptr<ContextRead> read, std::string before) {
  // Twice what is missing (hidden events come in runs), at least 20, at most 200.
  int missing = read->count - read->added;
  int chunk = std::clamp(2 * missing + 10, 20, 200);
  keys::CustomerKeys ck(read->tenant, read->customer_id);
  client->Command(
      {"XREVRANGE", ck.timeline(), absl::StrCat("(", before), "-", "COUNT", absl::StrCat(chunk)},
      read->deadline, [client, read, chunk](absl::StatusOr<Reply> r) {
        if (!r.ok()) return read->done(r.status());
        absl::StatusOr<bool> full = AddVisible(*read, r->elements);
        if (!full.ok()) return read->done(full.status());
        if (*full || static_cast<int>(r->elements.size()) < chunk ||
            read->examined >= kMaxExaminedEvents) {
          return read->done(std::move(read->response));
        }
        ReadOlder(client, read, r->elements.back().elements[0].str);
      });
}

}  // namespace

void ContextStore::ReadContext(const std::string& tenant, const std::string& customer_id, int count,
                               int read_count, v1::Audience reader, absl::Time deadline,
                               Callback<v1::GetContextResponse> cb) {
  keys::CustomerKeys ck(tenant, customer_id);
  int64_t now = NowMillis();
  auto read = std::make_shared<ContextRead>(tenant, customer_id);
  read->count = count;
  read->audience = reader;
  read->deadline = deadline;
  read->done = std::move(cb);
  client_->Snapshot(
      SnapshotCommands(ck, read_count, now), deadline,
      [this, read, read_count, now](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return read->done(r.status());
        absl::StatusOr<std::shared_ptr<const Snapshot>> snapshot = ReadSnapshot(*std::move(r));
        if (!snapshot.ok()) return read->done(snapshot.status());
        const Reply& parts = (*snapshot)->parts;
        if (absl::Status st = identity::GuardRead(read->customer_id, parts.elements[kProfile]);
            !st.ok()) {
          return read->done(st);
        }
        std::vector<v1::OpenConversation> open =
            OpenConversations(parts.elements[kConversations], now);
        auto finish = [this, read, snapshot = *std::move(snapshot), read_count, now](
                          std::vector<v1::OpenConversation> open, const Reply& records) {
          absl::StatusOr<v1::GetContextResponse> resp =
              BuildContext(read->customer_id, snapshot->parts, std::move(open), records, now,
                           read->audience, policy_.repeat_window);
          if (!resp.ok()) return read->done(resp.status());
          read->response = *std::move(resp);
          redis::RespView::Value entries = snapshot->events();
          absl::StatusOr<bool> full = AddVisible(*read, entries);
          if (!full.ok()) return read->done(full.status());
          if (*full || static_cast<int>(entries.size()) < read_count) {
            return read->done(std::move(read->response));
          }
          // Every entry was examined (not full), so each is a well-formed item.
          ReadOlder(client_, read, std::string(entries[entries.size() - 1][0].str()));
        };
        if (open.empty()) return finish(std::move(open), Reply());
        // The records of the open conversations: after the snapshot (a record read a moment
        // later is only newer), and only when there are some.
        std::vector<std::string> hmget = {
            "HMGET", keys::CustomerKeys(read->tenant, read->customer_id).conversation_records()};
        for (const auto& c : open) hmget.push_back(c.conversation_id());
        client_->Command(std::move(hmget), read->deadline,
                         [read, open = std::move(open),
                          finish = std::move(finish)](absl::StatusOr<Reply> records) mutable {
                           if (!records.ok()) return read->done(records.status());
                           finish(std::move(open), *records);
                         });
      },
      /*in_place=*/true);
}

void ContextStore::GetContext(const v1::GetContextRequest& request, absl::Time deadline,
                              Callback<v1::GetContextResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (request.recent_events() < 0 || request.recent_events() > kMaxRecentEvents) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("recent_events: must be between 0 and ", kMaxRecentEvents)));
  }
  absl::StatusOr<v1::Audience> audience = timeline::ReaderAudience("audience", request.audience());
  if (!audience.ok()) return done(audience.status());
  int count = request.recent_events() == 0 ? kDefaultRecentEvents : request.recent_events();
  // A reader below AGENT may not see every event: bots and the customer's app miss every
  // internal note, so they read twice as many in the same round trip. Agents miss only
  // supervisor-only events, which are rare: they read exactly `count`, and older events only
  // when some of those were hidden (ReadOlder).
  int read_count = count;
  if (*audience < v1::AUDIENCE_AGENT) read_count = 2 * count + 10;
  std::string tenant = request.tenant();
  v1::Audience reader = *audience;
  identity_->ResolveRef(
      tenant, "customer", request.customer(), false, deadline,
      [this, tenant, count, read_count, reader, deadline,
       done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
        if (!who.ok()) return done(who.status());
        identity::FollowMerges<v1::GetContextResponse>(
            who->customer_id,
            [this, tenant, count, read_count, reader, deadline](
                const std::string& customer_id, Callback<v1::GetContextResponse> cb) {
              ReadContext(tenant, customer_id, count, read_count, reader, deadline, std::move(cb));
            },
            std::move(done));
      });
}

v1::GetContextResponse WithDecodedEvents(const v1::GetContextResponse& response) {
  v1::GetContextResponse decoded;
  decoded.ParseFromString(response.SerializeAsString());
  return decoded;
}

}  // namespace onestory::context
