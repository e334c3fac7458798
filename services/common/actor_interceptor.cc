#include "services/common/actor_interceptor.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/auth/agent_tokens.h"
#include "onestory/v1/common.pb.h"

namespace onestory::service {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using grpc::experimental::InterceptionHookPoints;

// Requests are shallow: an Append's events are the deepest Actors (depth 2).
constexpr int kMaxDepth = 4;

bool Acting(const FieldDescriptor* f) {
  return f->message_type() == v1::Actor::descriptor() &&
         (f->name() == "actor" || f->name() == "served_by" || f->name() == "from");
}

// Visits `m`'s acting Actors; returns the first refusal ("" when none).
std::string Walk(const v1::Actor& agent, Message* m, const std::string& path, int depth) {
  const google::protobuf::Reflection* r = m->GetReflection();
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  for (int k = 0; k < d->field_count(); ++k) {
    const FieldDescriptor* f = d->field(k);
    if (f->message_type() == nullptr || f->is_map()) continue;
    std::string name = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    if (Acting(f) && !f->is_repeated()) {
      auto* actor = static_cast<v1::Actor*>(r->MutableMessage(m, f));
      if (actor->type() == v1::Actor::TYPE_UNSPECIFIED && actor->id().empty()) {
        *actor = agent;
      } else if (actor->type() != agent.type() || actor->id() != agent.id()) {
        return absl::StrCat(name, ": names ", v1::Actor::Type_Name(actor->type()), " '",
                            actor->id(), "', but an agent token acts only as its agent (",
                            v1::Actor::Type_Name(agent.type()), " '", agent.id(),
                            "'); leave it empty or name the agent");
      }
      continue;
    }
    if (depth >= kMaxDepth || !absl::StartsWith(f->message_type()->full_name(), "onestory.v1.")) {
      continue;
    }
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        std::string refused = Walk(agent, r->MutableRepeatedMessage(m, f, i),
                                   absl::StrCat(name, "[", i, "]"), depth + 1);
        if (!refused.empty()) return refused;
      }
    } else if (r->HasField(*m, f)) {
      std::string refused = Walk(agent, r->MutableMessage(m, f), name, depth + 1);
      if (!refused.empty()) return refused;
    }
  }
  return "";
}

class ActorInterceptor final : public grpc::experimental::Interceptor {
 public:
  // The call's caller is identified once from here to the end of the call (Identify).
  ActorInterceptor(grpc::experimental::ServerRpcInfo* info, const Authenticator* auth)
      : info_(info), auth_(auth) {
    auth_->OpenCall(info_->server_context());
  }
  ~ActorInterceptor() override { auth_->CloseCall(info_->server_context()); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      md_ = methods->GetRecvInitialMetadata();
      md_->erase(grpc::string_ref(kActorRefused.data(), kActorRefused.size()));  // ours only
      auto it = md_->find("authorization");
      if (it != md_->end()) {
        absl::string_view v(it->second.data(), it->second.size());
        token_ = absl::StartsWithIgnoreCase(v, "bearer ") &&
                 auth::LooksLikeJwt(absl::StripAsciiWhitespace(v.substr(7)));
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) && token_ &&
        md_ != nullptr && refused_.empty()) {
      if (void* m = methods->GetRecvMessage(); m != nullptr) {
        absl::StatusOr<Caller> caller = auth_->Identify(*info_->server_context());
        if (caller.ok() && !caller->agent.empty()) {
          // Generated messages derive from Message as their first and only base.
          refused_ = ActAsAgent(*caller, static_cast<Message*>(m));
          // The entry points into refused_, which lives as long as the call.
          if (!refused_.empty()) {
            md_->emplace(grpc::string_ref(kActorRefused.data(), kActorRefused.size()),
                         grpc::string_ref(refused_));
          }
        }
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  const Authenticator* auth_;
  std::multimap<grpc::string_ref, grpc::string_ref>* md_ = nullptr;
  bool token_ = false;
  std::string refused_;
};

}  // namespace

std::string ActAsAgent(const Caller& caller, Message* request) {
  v1::Actor agent;
  agent.set_type(caller.agent_audience == v1::AUDIENCE_BOT ? v1::Actor::TYPE_BOT
                                                           : v1::Actor::TYPE_AGENT);
  agent.set_id(caller.agent);
  return Walk(agent, request, "", 0);
}

grpc::experimental::Interceptor* ActorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() == nullptr || !absl::StartsWith(info->method(), "/onestory.v1.")) {
    return nullptr;
  }
  return new ActorInterceptor(info, auth_);
}

}  // namespace onestory::service
