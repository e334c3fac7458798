// ConversationStore: conversations with bots and agents, handoffs between them and across
// channels, and the "already told us" facts (ConversationService).
//
//   ConversationStore conversations({&redis_client, &identity_store, policy});
//   conversations.Start(request, deadline, [](absl::StatusOr<v1::StartConversationResponse> r) {});
//
// Each operation is one Redis function (libs/engagement/lua/conversation_*.lua) over the
// customer's keys (plus the tenant's alert and journey keys): it checks the request against the
// stored state, appends its event through the shared event effects (libs/timeline/event_effects.h:
// contacts, repeat contacts, alerts, watchers) and changes the conversation and facts, all or
// nothing. Retries: Start and End are keyed by the conversation id, Handoff and RecordFacts by
// request_id, through the event's id in the timeline's dedup hash (event ids "cs:<conversation>",
// "ce:<conversation>", "ho:<request>", "fr:<request>").
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/engagement/customer_script.h"
#include "onestory/v1/conversation.pb.h"

namespace onestory::engagement {

class ConversationStore {
 public:
  explicit ConversationStore(StoreContext ctx) : ctx_(ctx) {}

  void Start(const v1::StartConversationRequest& request, absl::Time deadline,
             Callback<v1::StartConversationResponse> done);
  void Handoff(const v1::HandoffRequest& request, absl::Time deadline,
               Callback<v1::HandoffResponse> done);
  void End(const v1::EndConversationRequest& request, absl::Time deadline,
           Callback<v1::EndConversationResponse> done);
  void RecordFacts(const v1::RecordFactsRequest& request, absl::Time deadline,
                   Callback<v1::RecordFactsResponse> done);

 private:
  StoreContext ctx_;
};

}  // namespace onestory::engagement
