#include "libs/timeline/timeline_store.h"

#include <algorithm>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/timeline_append.h"
#include "libs/lua/timeline_range.h"
#include "libs/outbox/outbox.h"
#include "libs/privacy/free_text.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"
#include "libs/timeline/stream_entry.h"

namespace onestory::timeline {
namespace {

using redis::Reply;

// The timeline_range call reading `count` entries of a customer's timeline from `start`.
lua::TimelineRange RangeCall(const std::string& tenant, const std::string& customer_id,
                             bool oldest_first, std::string start, int64_t count) {
  keys::CustomerKeys ck(tenant, customer_id);
  lua::TimelineRange call;
  call.profile = ck.profile();
  call.timeline = ck.timeline();
  call.remap = ck.remap();
  call.customer_id = customer_id;
  call.order = oldest_first ? "asc" : "desc";
  call.start = std::move(start);
  call.count = count;
  return call;
}

uint64_t Fnv1a(absl::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

struct Filter {
  absl::flat_hash_set<int> channels;
  absl::flat_hash_set<int> kinds;
  int64_t after_ms = INT64_MIN;
  int64_t before_ms = INT64_MAX;
  v1::Audience audience = v1::AUDIENCE_AGENT;
  uint64_t fingerprint = 0;

  bool empty() const {
    return channels.empty() && kinds.empty() && after_ms == INT64_MIN && before_ms == INT64_MAX &&
           audience == v1::AUDIENCE_SUPERVISOR;
  }
  bool Matches(const v1::Event& e) const {
    if (!VisibleTo(e.visibility(), audience)) return false;
    if (!channels.empty() && !channels.contains(e.channel())) return false;
    if (!kinds.empty() && !kinds.contains(e.kind())) return false;
    int64_t t = ToMillis(e.occurred_at());
    return t >= after_ms && t < before_ms;
  }
};

absl::StatusOr<Filter> BuildFilter(const v1::ListRequest& r) {
  Filter f;
  std::string canonical;
  std::vector<int> channels(r.channels().begin(), r.channels().end());
  std::vector<int> kinds(r.kinds().begin(), r.kinds().end());
  std::sort(channels.begin(), channels.end());
  std::sort(kinds.begin(), kinds.end());
  for (size_t i = 0; i < channels.size(); ++i) {
    if (channels[i] == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(channels[i])) {
      return absl::InvalidArgumentError(absl::StrCat("channels: unknown value ", channels[i]));
    }
    f.channels.insert(channels[i]);
    absl::StrAppend(&canonical, "c", channels[i]);
  }
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (kinds[i] == v1::EVENT_KIND_UNSPECIFIED || !v1::EventKind_IsValid(kinds[i])) {
      return absl::InvalidArgumentError(absl::StrCat("kinds: unknown value ", kinds[i]));
    }
    f.kinds.insert(kinds[i]);
    absl::StrAppend(&canonical, "k", kinds[i]);
  }
  absl::StatusOr<v1::Audience> audience = ReaderAudience("audience", r.audience());
  if (!audience.ok()) return audience.status();
  f.audience = *audience;
  // Only an audience other than AGENT changes the fingerprint, so page tokens from before
  // audiences existed (read as AGENT) keep working.
  if (f.audience != v1::AUDIENCE_AGENT) absl::StrAppend(&canonical, "v", f.audience);
  // The same range Append accepts for occurred_at (and the milliseconds then fit).
  if (r.has_occurred_after()) {
    RETURN_IF_ERROR(ValidateTimestamp("occurred_after", r.occurred_after()));
    f.after_ms = ToMillis(r.occurred_after());
  }
  if (r.has_occurred_before()) {
    RETURN_IF_ERROR(ValidateTimestamp("occurred_before", r.occurred_before()));
    f.before_ms = ToMillis(r.occurred_before());
  }
  if (f.after_ms >= f.before_ms) {
    return absl::InvalidArgumentError("occurred_before: must be later than occurred_after");
  }
  absl::StrAppend(&canonical, "a", f.after_ms, "b", f.before_ms);
  f.fingerprint = Fnv1a(canonical);
  return f;
}

}  // namespace

void TimelineStore::Append(const v1::AppendRequest& request, absl::Time deadline,
                           Callback<v1::AppendResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  int64_t now = NowMillis();
  // Events are validated before the customer is resolved, so a bad request creates nothing.
  absl::StatusOr<std::vector<v1::Event>> prepared = PrepareEvents(request.events(), now);
  if (!prepared.ok()) return done(prepared.status());
  if (request.create_if_missing() && !request.customer().has_identifier()) {
    return done(absl::InvalidArgumentError(
        "create_if_missing: needs customer.identifier (a customer id cannot be created)"));
  }
  // Masked once, after validation (limits apply to the text as sent): stored and answered alike.
  for (v1::Event& e : *prepared) privacy::MaskFreeText(privacy::OrCardsOnly(redactor_), &e);
  auto events = std::make_shared<std::vector<v1::Event>>(*std::move(prepared));
  std::string tenant = request.tenant();
  identity_->ResolveRef(
      tenant, "customer", request.customer(), request.create_if_missing(), deadline,
      [this, tenant, events, now, deadline,
       done = std::move(done)](absl::StatusOr<identity::IdentityStore::Resolved> who) mutable {
        if (!who.ok()) return done(who.status());
        std::string via = who->identifier.type() == v1::IDENTIFIER_TYPE_UNSPECIFIED
                              ? std::string()
                              : identity::IdentifierField(who->identifier);
        // Set when the append is redirected from a merged customer: its events go back with
        // that customer if the merge is undone.
        auto tag = std::make_shared<std::string>();
        identity::FollowMerges<v1::AppendResponse>(
            who->customer_id,
            [this, tenant, events, now, deadline, via, tag](const std::string& customer_id,
                                                            Callback<v1::AppendResponse> cb) {
              AppendTo(tenant, customer_id, events, now, *tag, via, deadline, std::move(cb));
            },
            std::move(done),
            [tag](const identity::Moved& m) {
              // Every merge on the way, innermost first: each Unmerge gives the events back
              // one level.
              *tag = tag->empty() ? m.merge_id : absl::StrCat(*tag, ",", m.merge_id);
            });
      });
}

void TimelineStore::AppendTo(const std::string& tenant, const std::string& customer_id,
                             std::shared_ptr<std::vector<v1::Event>> events, int64_t now,
                             const std::string& tag, const std::string& via, absl::Time deadline,
                             Callback<v1::AppendResponse> done) {
  keys::CustomerKeys ck(tenant, customer_id);
  const retention::Limits limits = RetentionLimits(tenant, policy_);
  lua::TimelineAppend call;
  call.profile = ck.profile();
  call.timeline = ck.timeline();
  call.dedup = ck.dedup();
  call.conversations = ck.conversations();
  call.identifiers = ck.identifiers();
  call.conversation_records = ck.conversation_records();
  call.cases = ck.cases();
  call.contacts = ck.contacts();
  call.contact_channels = ck.contact_channels();
  call.signals = ck.signals();
  call.outbox = ck.outbox();
  call.customer_id = customer_id;
  call.now_ms = now;
  call.notify_channel = ck.channel();
  call.tag = tag;
  call.via = via;
  call.repeat_window_ms = absl::ToInt64Milliseconds(policy_.repeat_window);
  call.alert_repeat_contacts = policy_.alert_repeat_contacts;
  call.alert_negative_streak = policy_.alert_negative_streak;
  call.max_events = limits.max_events;
  call.max_age_ms = absl::ToInt64Milliseconds(limits.max_age);
  call.events.reserve(events->size() * kArgsPerEvent);
  for (const v1::Event& e : *events) AppendEventArgs(e, &call.events);
  client_->Fcall(
      call, deadline,
      [this, tenant, customer_id, events, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        // Per event its stream id, duplicate flag and stored blob, then the outbox's length.
        if (!r->is_array() || r->elements.size() != 3 * events->size() + 1) {
          return done(absl::InternalError("unexpected reply from timeline_append"));
        }
        v1::AppendResponse resp;
        resp.set_customer_id(customer_id);
        for (size_t i = 0; i < events->size(); ++i) {
          const Reply* item = &r->elements[3 * i];
          if (!item[0].is_string() || item[1].type != Reply::Type::kInteger ||
              !item[2].is_string()) {
            return done(absl::InternalError("unexpected reply from timeline_append"));
          }
          const std::string& sid = item[0].str;
          bool duplicate = item[1].integer == 1;
          v1::AppendResult* result = resp.add_results();
          v1::Event* e = result->mutable_event();
          if (duplicate && !item[2].str.empty()) {
            if (!e->ParseFromString(item[2].str)) {
              return done(absl::InternalError(absl::StrCat("undecodable event at ", sid)));
            }
          } else {
            *e = std::move((*events)[i]);
          }
          e->set_customer_id(customer_id);
          e->set_cursor(EncodeCursor(customer_id, sid));
          *e->mutable_appended_at() = FromMillis(StreamIdMillis(sid));
          result->set_duplicate(duplicate);
        }
        if (r->elements.back().integer == 0) return done(std::move(resp));
        // Alerts, journey counters or activity to apply (libs/outbox): answered once marked.
        outbox::Settle(client_, tenant, customer_id, deadline,
                       [resp = std::move(resp), done = std::move(done)](absl::Status st) mutable {
                         if (!st.ok()) return done(st);
                         done(std::move(resp));
                       });
      });
}

struct TimelineStore::ListState {
  std::string tenant;
  std::string customer_id;
  int page_size = kDefaultPageSize;
  bool oldest_first = false;
  Filter filter;
  std::string start;  // the next range start ("-", "+" or "(<id>")
  int examined = 0;
  std::string last_examined;  // stream id of the last entry examined
  bool resumed = false;       // started from a page token
  int hops = 0;               // merges followed
  absl::Time deadline;
  v1::ListResponse response;
  Callback<v1::ListResponse> done;
};

void TimelineStore::List(const v1::ListRequest& request, absl::Time deadline,
                         Callback<v1::ListResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxPageSize)));
  }
  if (!v1::Order_IsValid(request.order())) {
    return done(absl::InvalidArgumentError("order: unknown value"));
  }
  absl::StatusOr<Filter> filter = BuildFilter(request);
  if (!filter.ok()) return done(filter.status());
  auto state = std::make_shared<ListState>();
  state->tenant = request.tenant();
  state->page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  state->oldest_first = request.order() == v1::ORDER_OLDEST_FIRST;
  state->filter = *std::move(filter);
  state->deadline = deadline;
  state->done = std::move(done);
  std::string page_token = request.page_token();
  identity_->ResolveRef(
      request.tenant(), "customer", request.customer(), false, deadline,
      [this, state, page_token](absl::StatusOr<identity::IdentityStore::Resolved> who) {
        if (!who.ok()) return state->done(who.status());
        state->customer_id = who->customer_id;
        if (page_token.empty()) {
          state->start = std::string(state->oldest_first ? "-" : "+");
          return ListNext(state);
        }
        // A page token names the customer whose timeline it pages: the ref's customer, or its
        // merge target when it was merged (looked up only then).
        auto resume = [this, state, page_token](const std::string& customer) {
          PageToken expected{customer, state->oldest_first, "", state->filter.fingerprint};
          absl::StatusOr<PageToken> token = DecodePageToken(page_token, expected);
          if (!token.ok()) return state->done(token.status());
          state->customer_id = customer;
          state->start = absl::StrCat("(", token->stream_id);
          state->resumed = true;
          ListNext(state);
        };
        PageToken own{state->customer_id, state->oldest_first, "", state->filter.fingerprint};
        if (DecodePageToken(page_token, own).ok()) return resume(state->customer_id);
        identity_->RootOf(state->tenant, state->customer_id, state->deadline,
                          [state, resume](absl::StatusOr<std::string> root) mutable {
                            if (!root.ok()) return state->done(root.status());
                            resume(*root);
                          });
      });
}

void TimelineStore::ListNext(std::shared_ptr<ListState> state) {
  int chunk = state->filter.empty() ? state->page_size + 1 : std::max(100, state->page_size * 2);
  chunk = std::min(chunk, kMaxExaminedPerList - state->examined + 1);
  client_->Fcall(
      RangeCall(state->tenant, state->customer_id, state->oldest_first, state->start, chunk),
      state->deadline, [this, state, chunk](absl::StatusOr<Reply> r) {
        if (!r.ok()) {
          // Merged before the first read: list the target instead.
          std::optional<identity::Moved> moved = identity::MovedTo(r.status());
          if (moved && state->examined == 0 && !state->resumed &&
              ++state->hops <= identity::kMaxMergeHops) {
            state->customer_id = moved->target;
            return ListNext(state);
          }
          if (moved && state->resumed) {
            return state->done(absl::FailedPreconditionError(
                absl::StrCat("page_token: customer ", state->customer_id, " was merged into ",
                             moved->target, " since this listing began; list again")));
          }
          return state->done(r.status());
        }
        for (const Reply& entry : r->elements) {
          const std::string& sid = entry.elements.empty() ? "" : entry.elements[0].str;
          bool page_full = state->response.events_size() >= state->page_size;
          bool budget_spent = state->examined >= kMaxExaminedPerList;
          if (page_full || budget_spent) {
            // More entries exist beyond what this page covers.
            state->response.set_next_page_token(
                EncodePageToken({state->customer_id, state->oldest_first, state->last_examined,
                                 state->filter.fingerprint}));
            return state->done(std::move(state->response));
          }
          absl::StatusOr<v1::Event> e = EventFromEntry(state->customer_id, entry);
          if (!e.ok()) return state->done(e.status());
          ++state->examined;
          state->last_examined = sid;
          if (state->filter.Matches(*e)) *state->response.add_events() = *std::move(e);
        }
        if (static_cast<int>(r->elements.size()) < chunk) {
          return state->done(std::move(state->response));  // the end of the timeline
        }
        state->start = absl::StrCat("(", state->last_examined);
        ListNext(state);
      });
}

void TimelineStore::ReadAfter(const std::string& tenant, const std::string& customer_id,
                              const std::string& after, int max, absl::Time deadline,
                              Callback<Batch> done) {
  client_->Fcall(RangeCall(tenant, customer_id, true, absl::StrCat("(", after), max), deadline,
                 [customer_id, after, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                   if (!r.ok()) return done(r.status());
                   Batch batch;
                   batch.last_stream_id = after;
                   for (const Reply& entry : r->elements) {
                     absl::StatusOr<v1::Event> e = EventFromEntry(customer_id, entry);
                     if (!e.ok()) return done(e.status());
                     batch.events.push_back(*std::move(e));
                     batch.stream_ids.push_back(entry.elements[0].str);
                     batch.last_stream_id = entry.elements[0].str;
                   }
                   done(std::move(batch));
                 });
}

void TimelineStore::Head(const std::string& tenant, const std::string& customer_id,
                         absl::Time deadline, Callback<std::string> done) {
  client_->Fcall(RangeCall(tenant, customer_id, false, "+", 1), deadline,
                 [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                   if (!r.ok()) return done(r.status());
                   if (r->elements.empty()) return done(std::string("0-0"));
                   done(r->elements[0].elements[0].str);
                 });
}

}  // namespace onestory::timeline
