// TimelineStore: each customer's append-only timeline, a Redis stream.
//
//   TimelineStore timeline(&redis_client, &identity_store);
//   timeline.Append(request, deadline, [](absl::StatusOr<v1::AppendResponse> r) { ... });
//
// Storage: one stream entry per event ({"e": serialized Event without output fields}; read back
// by stream_entry.h, which names the fields a merge adds), a dedup
// hash event_id -> stream id, per-channel latest activity in the profile hash and the open
// conversations hash (see libs/keys/key_schema.h). An append is one Lua script: it checks the
// customer exists, returns already-stored event_ids as duplicates, writes the rest, updates
// activity and conversations, and publishes the newest stream id on the customer's notify
// channel so every instance can wake its watchers. Either every event of a request is written
// or none is.
//
// Event ids are remembered for as long as the customer's timeline exists (no trimming yet),
// which covers the promised dedup window of at least 24 hours.
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/identity/identity_store.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "libs/timeline/event_effects.h"
#include "onestory/v1/timeline.pb.h"

namespace onestory::timeline {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;
inline constexpr int kMaxExaminedPerList = 2000;

class TimelineStore {
 public:
  // `redactor`: the masking of the events' free text before they are stored (privacy::OrCardsOnly:
  // null masks card numbers only). Not owned; must outlive the store.
  TimelineStore(redis::Client* client, identity::IdentityStore* identity,
                EngagementPolicy policy = {}, const privacy::Redactor* redactor = nullptr)
      : client_(client), identity_(identity), policy_(policy), redactor_(redactor) {}

  void Append(const v1::AppendRequest& request, absl::Time deadline,
              Callback<v1::AppendResponse> done);

  void List(const v1::ListRequest& request, absl::Time deadline, Callback<v1::ListResponse> done);

  struct Batch {
    std::vector<v1::Event> events;        // with customer_id, cursor and appended_at
    std::vector<std::string> stream_ids;  // of each event, in the same order
    std::string last_stream_id;           // of the last event, or the input position when empty
  };
  // Up to `max` events after stream id `after` ("0-0" for the start), oldest first. NOT_FOUND for
  // an unknown customer. For Watch.
  void ReadAfter(const std::string& tenant, const std::string& customer_id,
                 const std::string& after, int max, absl::Time deadline, Callback<Batch> done);

  // The stream id of the customer's newest event ("0-0" when none). NOT_FOUND for an unknown
  // customer. For Watch.
  void Head(const std::string& tenant, const std::string& customer_id, absl::Time deadline,
            Callback<std::string> done);

  identity::IdentityStore* identity() { return identity_; }

 private:
  struct ListState;
  void AppendTo(const std::string& tenant, const std::string& customer_id,
                std::shared_ptr<std::vector<v1::Event>> events, int64_t now, const std::string& tag,
                const std::string& via, absl::Time deadline, Callback<v1::AppendResponse> done);
  void ListNext(std::shared_ptr<ListState> state);

  redis::Client* client_;
  identity::IdentityStore* identity_;
  EngagementPolicy policy_;
  const privacy::Redactor* redactor_;
};

}  // namespace onestory::timeline
