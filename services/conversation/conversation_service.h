// ConversationService over gRPC: hands each call to libs/engagement's ConversationStore.
#pragma once

#include "libs/engagement/conversation_store.h"
#include "onestory/v1/conversation.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class ConversationServiceImpl final : public v1::ConversationService::CallbackService {
 public:
  ConversationServiceImpl(engagement::ConversationStore* store, const Authenticator* auth)
      : store_(store), auth_(auth) {}

  grpc::ServerUnaryReactor* StartConversation(grpc::CallbackServerContext* ctx,
                                              const v1::StartConversationRequest* req,
                                              v1::StartConversationResponse* resp) override;
  grpc::ServerUnaryReactor* Handoff(grpc::CallbackServerContext* ctx, const v1::HandoffRequest* req,
                                    v1::HandoffResponse* resp) override;
  grpc::ServerUnaryReactor* EndConversation(grpc::CallbackServerContext* ctx,
                                            const v1::EndConversationRequest* req,
                                            v1::EndConversationResponse* resp) override;
  grpc::ServerUnaryReactor* RecordFacts(grpc::CallbackServerContext* ctx,
                                        const v1::RecordFactsRequest* req,
                                        v1::RecordFactsResponse* resp) override;

 private:
  engagement::ConversationStore* store_;
  const Authenticator* auth_;
};

}  // namespace onestory::service
