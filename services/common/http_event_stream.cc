#include "services/common/http_event_stream.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <deque>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/auth/agent_tokens.h"
#include "services/common/http_connect.h"
#include "services/common/stream_writer.h"

namespace onestory::service {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

// The streams served, by "<service>/<method>".
constexpr absl::string_view kStreams[] = {"onestory.v1.TimelineService/Watch",
                                          "onestory.v1.AlertService/WatchAlerts"};

// How long a stream may take to start (its customer resolved, its subscription made).
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
constexpr size_t kMaxCursorBytes = 512;

std::unique_ptr<Message> NewMessage(const google::protobuf::Descriptor* type) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

// The message's `cursor`, or its `event`'s (WatchResponse).
std::string CursorOf(const Message& m) {
  const google::protobuf::Reflection* r = m.GetReflection();
  if (const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("cursor");
      f != nullptr && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return r->GetString(m, f);
  }
  if (const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("event");
      f != nullptr && f->message_type() != nullptr) {
    return CursorOf(r->GetMessage(m, f));
  }
  return "";
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      out.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return out;
}

bool Write(httplib::DataSink& sink, const std::string& text) {
  return sink.write(text.data(), text.size());
}

}  // namespace

// One server-streaming call on the in-process channel. gRPC's reactions fill a bounded queue;
// the HTTP connection's thread drains it. Reads pause while the queue is full, so a slow client
// slows the stream (and the server ends it once it lags too far).
class EventStreams::Call final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  enum class Next { kMessage, kEnded, kIdle };

  explicit Call(size_t max_buffered) : max_buffered_(max_buffered) {}

  grpc::ClientContext& context() { return ctx_; }

  void Start(grpc::GenericStub* stub, const std::string& path, const std::string& request) {
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub->PrepareBidiStreamingCall(&ctx_, path, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&read_);
    StartCall();
  }

  // Waits until the server accepted the stream (true) or ended it (false), or `deadline`.
  bool WaitStarted(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(
        absl::Condition(
            +[](Call* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return c->started_ || c->done_; },
            this),
        deadline);
    return started_;
  }

  // The next message (kMessage, in `*bytes`), the end (kEnded: status()), or nothing by
  // `deadline` (kIdle).
  Next Take(absl::Time deadline, std::string* bytes) {
    bool resume = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Call* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
                                  return !c->queue_.empty() || c->done_;
                                },
                                this),
                            deadline);
      if (queue_.empty()) return done_ ? Next::kEnded : Next::kIdle;
      *bytes = std::move(queue_.front());
      queue_.pop_front();
      if (paused_) {
        paused_ = false;
        resume = true;
      }
    }
    if (resume) StartRead(&read_);
    return Next::kMessage;
  }

  // Ends the stream (StopAll): cancels the call, whose end Take then reports.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
    }
    ctx_.TryCancel();
  }

  // Cancels the call unless it ended, and waits until gRPC is done with it.
  void Finish() {
    ctx_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

  bool stopped() const {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }
  grpc::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  void OnReadInitialMetadataDone(bool ok) override {
    // A stream refused at once sends initial metadata too, with its status, but unmarked.
    bool open = ok && ctx_.GetServerInitialMetadata().count(std::string(kStreamOpen)) > 0;
    absl::MutexLock lock(&mu_);
    if (open) started_ = true;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone has its status
    bool more;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(Bytes(read_));
      started_ = true;
      more = queue_.size() < max_buffered_;
      paused_ = !more;
    }
    if (more) StartRead(&read_);
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;  // the last touch by gRPC: Finish may return and the call be freed
  }

  const size_t max_buffered_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer read_;  // filled by gRPC between StartRead and OnReadDone
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

EventStreams::EventStreams(Options options, std::shared_ptr<grpc::GenericStub> stub)
    : options_(options), stub_(std::move(stub)) {}

EventStreams::~EventStreams() {
  StopAll();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](EventStreams* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->open_.empty(); },
      this));
}

bool EventStreams::Serves(absl::string_view service, absl::string_view method) {
  std::string path = absl::StrCat(service, "/", method);
  for (absl::string_view s : kStreams) {
    if (s == path) return true;
  }
  return false;
}

bool EventStreams::Open(Call* call) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(open_.size()) >= options_.max_streams) return false;
  open_.insert(call);
  return true;
}

void EventStreams::Close(Call* call) {
  absl::MutexLock lock(&mu_);
  open_.erase(call);
}

void EventStreams::StopAll() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (Call* c : open_) c->Stop();
}

void EventStreams::Serve(const std::string& service, const std::string& method,
                         const httplib::Request& req, httplib::Response& res) {
  const MethodDescriptor* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      absl::StrCat(service, ".", method));
  std::unique_ptr<Message> request = NewMessage(m->input_type());
  if (absl::Status st = MessageFromQuery(req.params, {"access_token"}, request.get()); !st.ok()) {
    return FailHttp(res, 400, "invalid_argument", st.message());
  }
  std::string last_id = req.get_header_value("Last-Event-ID");
  if (!last_id.empty()) {
    if (last_id.size() > kMaxCursorBytes) {
      return FailHttp(res, 400, "invalid_argument",
                      absl::StrCat("Last-Event-ID: over ", kMaxCursorBytes, " bytes"));
    }
    // A reconnect: resume right after the last message received.
    const google::protobuf::Reflection* r = request->GetReflection();
    r->SetString(request.get(), request->GetDescriptor()->FindFieldByName("after_cursor"), last_id);
    r->SetBool(request.get(), request->GetDescriptor()->FindFieldByName("from_start"), false);
  }

  auto call = std::make_shared<Call>(options_.max_buffered);
  grpc::ClientContext& ctx = call->context();
  std::string authorization = req.get_header_value("Authorization");
  if (req.has_param("access_token")) {
    std::string token = req.get_param_value("access_token");
    if (!authorization.empty()) {
      return FailHttp(res, 400, "invalid_argument",
                      "access_token: give the credential once, in the URL or in Authorization");
    }
    if (!auth::LooksLikeJwt(token)) {
      return FailHttp(res, 401, "unauthenticated",
                      "access_token: only an agent token (a JWT) may be sent in a URL; send API "
                      "keys as Authorization: Bearer <key>");
    }
    authorization = absl::StrCat("Bearer ", token);
  }
  if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
  for (const char* header : {"X-Request-Id", "Traceparent"}) {
    if (req.has_header(header)) {
      ctx.AddMetadata(absl::AsciiStrToLower(header), req.get_header_value(header));
    }
  }

  if (!Open(call.get())) {
    return FailHttp(res, 503, "unavailable",
                    absl::StrCat("too many event streams open (the limit is ", options_.max_streams,
                                 "); retry later or use gRPC"));
  }
  call->Start(stub_.get(), absl::StrCat("/", service, "/", method), request->SerializeAsString());
  auto finish = [this, call] {
    call->Finish();
    Close(call.get());
  };
  bool started = call->WaitStarted(absl::Now() + kStartTimeout);
  std::string request_id = MetadataValue(ctx.GetServerInitialMetadata(), "x-request-id");
  if (!started) {
    finish();
    grpc::Status status = call->status();
    if (request_id.empty()) {
      request_id = MetadataValue(ctx.GetServerTrailingMetadata(), "x-request-id");
    }
    if (!request_id.empty()) res.set_header("X-Request-Id", request_id);
    if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) {
      return FailHttp(
          res, 504, "deadline_exceeded",
          absl::StrCat("the stream did not start within ", absl::FormatDuration(kStartTimeout)));
    }
    return FailHttp(res, status);
  }
  if (!request_id.empty()) res.set_header("X-Request-Id", request_id);
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");  // proxies: pass each message on at once
  const google::protobuf::Descriptor* output = m->output_type();
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, call, output, last_id](size_t, httplib::DataSink& sink) mutable {
        if (!Write(sink, "retry: 2000\n\n")) return false;
        std::unique_ptr<Message> message = NewMessage(output);
        std::string bytes;
        for (;;) {
          switch (call->Take(absl::Now() + options_.heartbeat, &bytes)) {
            case Call::Next::kIdle:
              if (!Write(sink, ": heartbeat\n\n")) return false;
              continue;
            case Call::Next::kMessage: {
              std::string json;
              if (!message->ParseFromString(bytes) ||
                  !google::protobuf::util::MessageToJsonString(*message, &json).ok()) {
                json = ConnectErrorJson("internal", "a message could not be converted to JSON");
                Write(sink, absl::StrCat("event: error\ndata: ", json, "\n\n"));
                sink.done();
                return true;
              }
              last_id = CursorOf(*message);
              if (!Write(sink, absl::StrCat("id: ", last_id, "\ndata: ", json, "\n\n"))) {
                return false;
              }
              continue;
            }
            case Call::Next::kEnded: {
              grpc::Status status = call->status();
              if (call->stopped() && status.error_code() == grpc::StatusCode::CANCELLED) {
                status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "the server is shutting down; reconnect");
              }
              ConnectCode c = ConnectCodeOf(status.error_code());
              google::protobuf::Struct body;
              (*body.mutable_fields())["code"].set_string_value(c.name);
              (*body.mutable_fields())["message"].set_string_value(status.error_message());
              (*body.mutable_fields())["lastEventId"].set_string_value(last_id);
              std::string json;
              (void)google::protobuf::util::MessageToJsonString(body, &json);
              Write(sink, absl::StrCat("event: error\ndata: ", json, "\n\n"));
              sink.done();
              return true;
            }
          }
        }
      },
      [finish](bool) { finish(); });
}

}  // namespace onestory::service
