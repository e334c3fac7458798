// The floor of a gRPC callback-API unary call on this machine: a server that answers Resolve and
// GetContext from memory, with a response shaped like the one onestory-server sends for a
// customer loadgen populated, and touches no Redis, checks no key and writes no audit entry.
// Driven by tools/loadgen like onestory-server (--scenario=get_context, no events to populate),
// its CPU per call is what gRPC itself costs per call here; tools/bench.py puts
// onestory-server's figures next to it.
//
//   grpc_floor --listen=127.0.0.1:0 --port_file=/tmp/p [--finish_on=thread|inline]
//              [--interceptors=N]
//
// --finish_on=thread (the default) answers from the thread of a redis::EventLoop, as
// onestory-server answers from its Redis event-loop thread; inline answers in the handler: the
// difference is the cost of that hand-off alone. --interceptors=N adds N server interceptors that
// only proceed (gRPC runs an interceptor's post-receive hooks through one more pass of its
// completion queue).
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "libs/redis/event_loop.h"
#include "onestory/v1/context.grpc.pb.h"
#include "onestory/v1/identity.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on");
ABSL_FLAG(std::string, port_file, "", "where to write the port bound");
ABSL_FLAG(std::string, finish_on, "thread",
          "thread: Finish on an event-loop thread; inline: in the handler");
ABSL_FLAG(int, interceptors, 0, "server interceptors that only proceed");
ABSL_FLAG(int, events, 20, "events in each GetContext response");
ABSL_FLAG(int, body_bytes, 200, "bytes of each event's body");

namespace {

using onestory::v1::GetContextRequest;
using onestory::v1::GetContextResponse;

// With --finish_on=thread: the same event loop onestory-server answers from (libs/redis).
onestory::redis::EventLoop* finisher = nullptr;

void Answer(grpc::ServerUnaryReactor* reactor) {
  if (finisher == nullptr) return reactor->Finish(grpc::Status::OK);
  finisher->Post([reactor] { reactor->Finish(grpc::Status::OK); });
}

// Shaped like onestory-server's answer for a customer loadgen populated (8,177 bytes measured
// with 20 events of 200 bytes): the profile with one identifier, the events with their cursors
// and times, the channel activity, one open conversation and the signals.
GetContextResponse CannedResponse() {
  auto at = [](google::protobuf::Timestamp* t, int i) {
    t->set_seconds(1790000000 + i);
    t->set_nanos(968000000);
  };
  GetContextResponse r;
  auto* p = r.mutable_profile();
  p->set_customer_id("cus_j0k3nrve52erz3xbgp1p1cvbr5");
  auto* id = p->add_identifiers();
  id->mutable_identifier()->set_type(onestory::v1::IDENTIFIER_TYPE_CRM_ID);
  id->mutable_identifier()->set_value("loadgen-1234");
  at(id->mutable_linked_at(), 0);
  id->mutable_evidence()->mutable_linked_by()->set_type(onestory::v1::Actor::TYPE_SYSTEM);
  at(id->mutable_evidence()->mutable_first_seen(), 0);
  at(id->mutable_evidence()->mutable_last_seen(), 0);
  at(p->mutable_created_at(), 0);
  at(p->mutable_updated_at(), 0);
  for (int i = 0; i < absl::GetFlag(FLAGS_events); ++i) {
    auto* e = r.add_recent_events();
    e->set_event_id(absl::StrCat("lg-36867755310403-", 100 + i));
    e->set_channel(onestory::v1::CHANNEL_CHATBOT);
    e->set_kind(onestory::v1::EVENT_KIND_MESSAGE);
    at(e->mutable_occurred_at(), i);
    e->mutable_actor()->set_type(onestory::v1::Actor::TYPE_CUSTOMER);
    e->set_summary("order status question");
    e->set_body(std::string(absl::GetFlag(FLAGS_body_bytes), 'b'));
    e->set_conversation_id("conv-1");
    e->set_customer_id(p->customer_id());
    e->set_cursor(
        absl::StrCat("YzF8Y3VzX2owazNucnZlNTJlcnozeGJncDFwMWN2YnI1fDE3OTY1Nzk3MjI5NzAt", 100 + i));
    at(e->mutable_appended_at(), i);
  }
  r.mutable_last_activity()->set_channel(onestory::v1::CHANNEL_CHATBOT);
  at(r.mutable_last_activity()->mutable_at(), 20);
  *r.add_channels() = r.last_activity();
  auto* c = r.add_open_conversations();
  c->set_conversation_id("conv-1");
  c->set_channel(onestory::v1::CHANNEL_CHATBOT);
  at(c->mutable_started_at(), 0);
  at(c->mutable_last_activity_at(), 20);
  c->set_event_count(absl::GetFlag(FLAGS_events));
  r.set_total_events(absl::GetFlag(FLAGS_events));
  r.mutable_signals()->set_contacts_7d(1);
  r.mutable_signals()->set_contacts_30d(1);
  r.mutable_signals()->set_distinct_channels_30d(1);
  return r;
}

class Identity final : public onestory::v1::IdentityService::CallbackService {
  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* ctx,
                                    const onestory::v1::ResolveRequest* req,
                                    onestory::v1::ResolveResponse* resp) override {
    resp->set_customer_id(absl::StrCat("cus_", req->identifier().value()));
    auto* reactor = ctx->DefaultReactor();
    Answer(reactor);
    return reactor;
  }
};

class Context final : public onestory::v1::ContextService::CallbackService {
 public:
  Context() : canned_(CannedResponse()) {}
  grpc::ServerUnaryReactor* GetContext(grpc::CallbackServerContext* ctx,
                                       const GetContextRequest* req,
                                       GetContextResponse* resp) override {
    *resp = canned_;
    resp->mutable_profile()->set_customer_id(req->customer().customer_id());
    auto* reactor = ctx->DefaultReactor();
    Answer(reactor);
    return reactor;
  }
  size_t size() const { return canned_.ByteSizeLong(); }

 private:
  const GetContextResponse canned_;
};

class Proceed final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }
};

class ProceedFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new Proceed();
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string finish_on = absl::GetFlag(FLAGS_finish_on);
  if (finish_on != "thread" && finish_on != "inline") {
    std::fprintf(stderr, "grpc_floor: --finish_on must be thread or inline, not '%s'\n",
                 finish_on.c_str());
    return 2;
  }
  if (finish_on == "thread")
    finisher = new onestory::redis::EventLoop();  // lives as long as the process
  Identity identity;
  Context context;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&identity);
  builder.RegisterService(&context);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  for (int i = 0; i < absl::GetFlag(FLAGS_interceptors); ++i) {
    factories.push_back(std::make_unique<ProceedFactory>());
  }
  if (!factories.empty()) builder.experimental().SetInterceptorCreators(std::move(factories));
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "grpc_floor: cannot listen on %s\n", absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  std::fprintf(stderr, "grpc_floor: port %d, GetContext response %zu bytes, finish %s\n", port,
               context.size(), finish_on.c_str());
  if (std::string f = absl::GetFlag(FLAGS_port_file); !f.empty()) std::ofstream(f) << port;
  server->Wait();
}
