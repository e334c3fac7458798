// ContextStore: the "screen pop" — everything about a customer an agent, bot or app needs when
// the customer arrives: the repeat-contact flag, current facts, open cases, profile, latest
// events, open conversations and effort signals, read from one moment in one Redis round trip (a
// MULTI/EXEC of plain reads of the customer's keys, all in its hash slot), then the records of
// its open conversations (one HMGET, when it has some), plus one GET when the customer is named
// by an identifier. Events and facts the reader's audience may not see are left out; the
// snapshot reads a few more events than asked (twice as many for bots and the customer's app,
// who miss every internal note), and only when even those hold too few visible ones does a
// further read follow.
//
// The latest events are not decoded: each leaves the store serialized, as the stored bytes plus
// its output fields (customer_id, cursor, appended_at), in the response's unknown fields under
// recent_events' field number. gRPC sends them as they are and every reader parses them as
// recent_events, so the screen pop pays neither a decode nor an encode per event. Only the
// visibility is read from each, to leave out what the reader may not see. C++ code in this
// process that reads recent_events() calls WithDecodedEvents first.
//
//   ContextStore context(&redis_client, &identity_store);
//   context.GetContext(request, deadline, [](absl::StatusOr<v1::GetContextResponse> r) { ... });
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/identity/identity_store.h"
#include "libs/redis/client.h"
#include "libs/timeline/event_effects.h"
#include "onestory/v1/context.pb.h"

namespace onestory::context {

inline constexpr int kDefaultRecentEvents = 20;
inline constexpr int kMaxRecentEvents = 200;
// A conversation with no event for this long is no longer shown as open.
inline constexpr int64_t kOpenConversationIdleMs = 24 * 3600 * 1000;
// When many of the latest events are hidden from the reader's audience, at most this many are
// examined to find recent_events visible ones.
inline constexpr int kMaxExaminedEvents = 2000;

class ContextStore {
 public:
  ContextStore(redis::Client* client, identity::IdentityStore* identity,
               timeline::EngagementPolicy policy = {})
      : client_(client), identity_(identity), policy_(policy) {}

  void GetContext(const v1::GetContextRequest& request, absl::Time deadline,
                  Callback<v1::GetContextResponse> done);

 private:
  // Reads what GetContext shows of customer_id (not following merges: the caller does).
  void ReadContext(const std::string& tenant, const std::string& customer_id, int count,
                   int read_count, v1::Audience reader, absl::Time deadline,
                   Callback<v1::GetContextResponse> cb);

  redis::Client* client_;
  identity::IdentityStore* identity_;
  timeline::EngagementPolicy policy_;
};

// `response` with its serialized recent events parsed into recent_events (see above).
v1::GetContextResponse WithDecodedEvents(const v1::GetContextResponse& response);

}  // namespace onestory::context
