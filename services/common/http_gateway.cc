#include "services/common/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/common/console_assets.h"
#include "services/common/http_connect.h"

namespace onestory::service {
namespace {

using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

constexpr char kAllowedHeaders[] =
    "Authorization, Content-Type, X-Request-Id, Traceparent, Connect-Protocol-Version, "
    "Connect-Timeout-Ms";

void RefuseStopping(httplib::Response& res) {
  FailHttp(res, 503, "unavailable", "the server is shutting down; retry on another instance");
}

// GET /console/<file>: the reference agent console, same-origin only (its own scripts, calls
// to this listener), never framed, never sending a Referer (its URL names a customer).
void ServeConsole(const httplib::Request& req, httplib::Response& res) {
  std::string name = req.matches[1];
  if (name.empty()) name = "index.html";
  for (const ConsoleAsset& a : ConsoleAssets()) {
    if (a.name != name) continue;
    res.status = 200;
    res.set_content(std::string(a.body), std::string(a.content_type));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                   "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
                   "base-uri 'none'");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Content-Type-Options", "nosniff");
    return;
  }
  FailHttp(res, 404, "not_found", absl::StrCat("no file ", req.path, " in the console"));
}

// A CORS preflight (OPTIONS): 204 with what the page may send, for an allowed origin.
void Preflight(const HttpGateway::Options& options, const httplib::Request& req,
               httplib::Response& res) {
  if (!req.has_header("Origin") || !req.has_header("Access-Control-Request-Method")) {
    return FailHttp(res, 400, "invalid_argument",
                    "OPTIONS: a CORS preflight needs Origin and Access-Control-Request-Method");
  }
  if (!AdmitOrigin(options.cors_origins, req, res)) return;
  res.status = 204;
  res.set_header("Access-Control-Allow-Methods", "GET, POST");
  res.set_header("Access-Control-Allow-Headers", kAllowedHeaders);
  res.set_header("Access-Control-Max-Age", "600");
}

// The method named by the request's path; nullptr (and 404) when there is none.
const MethodDescriptor* FindMethod(const httplib::Request& req, httplib::Response& res) {
  std::string service = req.matches[1];
  std::string method = req.matches[2];
  const MethodDescriptor* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      absl::StrCat(service, ".", method));
  if (m == nullptr || !absl::StartsWith(service, "onestory.v1.")) {
    FailHttp(res, 404, "unimplemented", absl::StrCat("no method ", req.path));
    return nullptr;
  }
  return m;
}

// GET: a live stream as Server-Sent Events.
void ServeStream(const HttpGateway::Options& options, EventStreams* streams,
                 const httplib::Request& req, httplib::Response& res) {
  if (!AdmitOrigin(options.cors_origins, req, res)) return;
  const MethodDescriptor* m = FindMethod(req, res);
  if (m == nullptr) return;
  if (!EventStreams::Serves(req.matches[1].str(), req.matches[2].str())) {
    return FailHttp(res, 405, "unimplemented",
                    absl::StrCat("GET ", req.path,
                                 ": only TimelineService/Watch and AlertService/WatchAlerts are "
                                 "served as event streams; call unary methods with POST"));
  }
  streams->Serve(req.matches[1], req.matches[2], req, res);
}

void Serve(const HttpGateway::Options& options, grpc::GenericStub* stub,
           const httplib::Request& req, httplib::Response& res) {
  if (!AdmitOrigin(options.cors_origins, req, res)) return;
  const MethodDescriptor* m = FindMethod(req, res);
  if (m == nullptr) return;
  std::string service = req.matches[1];
  std::string method = req.matches[2];
  if (m->client_streaming() || m->server_streaming()) {
    return FailHttp(
        res, 501, "unimplemented",
        absl::StrCat(service, "/", method, " is a stream: over HTTP ",
                     EventStreams::Serves(service, method)
                         ? "it is served as Server-Sent Events to GET"
                         : "only unary methods and the live streams are served (use gRPC for it)"));
  }
  if (req.has_param("access_token")) {
    return FailHttp(res, 400, "invalid_argument",
                    "access_token: credentials go in the Authorization header (a URL is logged "
                    "by proxies); only event streams take an agent token in the URL");
  }
  std::string type = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
  type = type.substr(0, type.find(';'));
  absl::StripAsciiWhitespace(&type);
  if (type != "application/json") {
    return FailHttp(res, 415, "unknown",
                    absl::StrCat("Content-Type: application/json required, not '",
                                 req.get_header_value("Content-Type"), "'"));
  }
  if (req.body.size() > options.max_body_bytes) {
    return FailHttp(res, 413, "resource_exhausted",
                    absl::StrCat("request body: ", req.body.size(), " bytes, over the limit of ",
                                 options.max_body_bytes));
  }
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->input_type());
  std::unique_ptr<Message> request(prototype->New());
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(req.body.empty() ? "{}" : req.body,
                                                            request.get(), parse);
  if (!parsed.ok()) {
    return FailHttp(res, 400, "invalid_argument",
                    absl::StrCat("request body: not JSON of ", m->input_type()->full_name(), ": ",
                                 parsed.message().as_string()));
  }

  grpc::ClientContext ctx;
  for (const char* header : {"Authorization", "X-Request-Id", "Traceparent"}) {
    if (req.has_header(header)) {
      ctx.AddMetadata(absl::AsciiStrToLower(header), req.get_header_value(header));
    }
  }
  int64_t timeout_ms = 0;
  if (req.has_header("Connect-Timeout-Ms")) {
    std::string t = req.get_header_value("Connect-Timeout-Ms");
    if (t.size() > 10 || !absl::SimpleAtoi(t, &timeout_ms) || timeout_ms <= 0) {
      return FailHttp(res, 400, "invalid_argument",
                      "Connect-Timeout-Ms: a positive number of milliseconds, at most 10 digits");
    }
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  }
  std::string bytes = request->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::Status status;
  absl::Notification done;
  stub->UnaryCall(&ctx, absl::StrCat("/", service, "/", method), grpc::StubOptions(), &in, &out,
                  [&](grpc::Status s) {
                    status = std::move(s);
                    done.Notify();
                  });
  done.WaitForNotification();

  std::string request_id = MetadataValue(ctx.GetServerInitialMetadata(), "x-request-id");
  if (request_id.empty()) {
    request_id = MetadataValue(ctx.GetServerTrailingMetadata(), "x-request-id");
  }
  if (!request_id.empty()) res.set_header("X-Request-Id", request_id);
  if (!status.ok()) return FailHttp(res, status);
  std::unique_ptr<Message> response(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->output_type())->New());
  std::vector<grpc::Slice> slices;
  std::string raw;
  if (out.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices)
      raw.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  std::string json;
  if (!response->ParseFromString(raw) ||
      !google::protobuf::util::MessageToJsonString(*response, &json).ok()) {
    return FailHttp(res, 500, "internal", "the response could not be converted to JSON");
  }
  res.status = 200;
  res.set_content(json, "application/json");
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const Options& options, std::shared_ptr<grpc::Channel> channel) {
  // A thread per connection: every event stream, and the unary calls beside them.
  auto l =
      HttpListener::Bind(options.listen, "--http_listen", options.max_streams + 64, options.tls);
  if (!l.ok()) return l.status();
  auto g = std::unique_ptr<HttpGateway>(new HttpGateway());
  g->http_ = *std::move(l);
  g->channel_ = std::move(channel);
  auto stub = std::make_shared<grpc::GenericStub>(g->channel_);
  g->streams_ = std::make_unique<EventStreams>(
      EventStreams::Options{.max_streams = options.max_streams, .heartbeat = options.heartbeat},
      stub);
  httplib::Server& http = g->http_->server();
  // A body over the limit is read no further; up to it, Serve answers with Connect's error.
  http.set_payload_max_length(options.max_body_bytes + 1);
  HttpGateway* self = g.get();
  http.Post(R"(/([A-Za-z0-9_.]+)/([A-Za-z0-9_]+))",
            [self, options, stub](const httplib::Request& req, httplib::Response& res) {
              CallGuard guard(self);
              if (!guard.open()) return RefuseStopping(res);
              Serve(options, stub.get(), req, res);
            });
  http.Get("/console",
           [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/console/"); });
  http.Get(R"(/console/([A-Za-z0-9_.-]*))", ServeConsole);
  http.Get(R"(/([A-Za-z0-9_.]+)/([A-Za-z0-9_]+))",
           [self, options, streams = g->streams_.get()](const httplib::Request& req,
                                                        httplib::Response& res) {
             CallGuard guard(self);
             if (!guard.open()) return RefuseStopping(res);
             ServeStream(options, streams, req, res);
           });
  http.Options(R"(/.*)", [options](const httplib::Request& req, httplib::Response& res) {
    Preflight(options, req, res);
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      return FailHttp(res, 413, "resource_exhausted", "request body: over the limit");
    }
    FailHttp(res, res.status, res.status == 404 ? "unimplemented" : "unknown",
             absl::StrCat(req.method, " ", req.path,
                          ": not served (POST /onestory.v1.<Service>/<Method> with a JSON body, "
                          "or GET a live stream)"));
  });
  g->http_->Serve();
  return g;
}

void HttpGateway::Stop() {
  absl::WriterMutexLock lock(&mu_);  // waits for the calls being made
  stopping_ = true;
  if (streams_) streams_->StopAll();
}

HttpGateway::~HttpGateway() {
  Stop();
  // Streams first: their connections' threads end, so the listener can stop.
  http_.reset();
  streams_.reset();
}

}  // namespace onestory::service
