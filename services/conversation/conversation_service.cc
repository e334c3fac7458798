#include "services/conversation/conversation_service.h"

#include "services/common/unary.h"

namespace onestory::service {

using engagement::ConversationStore;

grpc::ServerUnaryReactor* ConversationServiceImpl::StartConversation(
    grpc::CallbackServerContext* ctx, const v1::StartConversationRequest* req,
    v1::StartConversationResponse* resp) {
  return Forward(ctx, req, resp, store_, &ConversationStore::Start);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::Handoff(grpc::CallbackServerContext* ctx,
                                                           const v1::HandoffRequest* req,
                                                           v1::HandoffResponse* resp) {
  return Forward(ctx, req, resp, store_, &ConversationStore::Handoff);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::EndConversation(
    grpc::CallbackServerContext* ctx, const v1::EndConversationRequest* req,
    v1::EndConversationResponse* resp) {
  return Forward(ctx, req, resp, store_, &ConversationStore::End);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::RecordFacts(grpc::CallbackServerContext* ctx,
                                                               const v1::RecordFactsRequest* req,
                                                               v1::RecordFactsResponse* resp) {
  return Forward(ctx, req, resp, store_, &ConversationStore::RecordFacts);
}

}  // namespace onestory::service
