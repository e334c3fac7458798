#include "services/conversation/conversation_service.h"

#include "services/common/auth.h"
#include "services/common/unary.h"

namespace onestory::service {

using engagement::ConversationStore;

grpc::ServerUnaryReactor* ConversationServiceImpl::StartConversation(
    grpc::CallbackServerContext* ctx, const v1::StartConversationRequest* req,
    v1::StartConversationResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &ConversationStore::Start);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::Handoff(grpc::CallbackServerContext* ctx,
                                                           const v1::HandoffRequest* req,
                                                           v1::HandoffResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &ConversationStore::Handoff);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::EndConversation(
    grpc::CallbackServerContext* ctx, const v1::EndConversationRequest* req,
    v1::EndConversationResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &ConversationStore::End);
}

grpc::ServerUnaryReactor* ConversationServiceImpl::RecordFacts(grpc::CallbackServerContext* ctx,
                                                               const v1::RecordFactsRequest* req,
                                                               v1::RecordFactsResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &ConversationStore::RecordFacts);
}

}  // namespace onestory::service
