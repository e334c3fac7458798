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

namespace onestory::service {
namespace {

using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

struct ConnectCode {
  int http;
  const char* name;
};

// The Connect protocol's name and HTTP status of each gRPC code.
ConnectCode ConnectCodeOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
      return {499, "canceled"};
    case grpc::StatusCode::INVALID_ARGUMENT:
      return {400, "invalid_argument"};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return {504, "deadline_exceeded"};
    case grpc::StatusCode::NOT_FOUND:
      return {404, "not_found"};
    case grpc::StatusCode::ALREADY_EXISTS:
      return {409, "already_exists"};
    case grpc::StatusCode::PERMISSION_DENIED:
      return {403, "permission_denied"};
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return {429, "resource_exhausted"};
    case grpc::StatusCode::FAILED_PRECONDITION:
      return {400, "failed_precondition"};
    case grpc::StatusCode::ABORTED:
      return {409, "aborted"};
    case grpc::StatusCode::OUT_OF_RANGE:
      return {400, "out_of_range"};
    case grpc::StatusCode::UNIMPLEMENTED:
      return {501, "unimplemented"};
    case grpc::StatusCode::INTERNAL:
      return {500, "internal"};
    case grpc::StatusCode::UNAVAILABLE:
      return {503, "unavailable"};
    case grpc::StatusCode::DATA_LOSS:
      return {500, "data_loss"};
    case grpc::StatusCode::UNAUTHENTICATED:
      return {401, "unauthenticated"};
    default:
      return {500, "unknown"};
  }
}

// Connect's error body, {"code": ..., "message": ...}, with `http` as the status.
void Fail(httplib::Response& res, int http, absl::string_view code, absl::string_view message) {
  google::protobuf::Struct body;
  (*body.mutable_fields())["code"].set_string_value(std::string(code));
  (*body.mutable_fields())["message"].set_string_value(std::string(message));
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(body, &json);
  res.status = http;
  res.set_content(json, "application/json");
}

// The value of a header of the gRPC call's metadata ("" when absent).
std::string Metadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md, const char* key) {
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

constexpr char kAllowedHeaders[] =
    "Authorization, Content-Type, X-Request-Id, Traceparent, Connect-Protocol-Version, "
    "Connect-Timeout-Ms";

bool OriginAllowed(const HttpGateway::Options& options, const std::string& origin) {
  return std::find(options.cors_origins.begin(), options.cors_origins.end(), origin) !=
         options.cors_origins.end();
}

// A request from a browser page (an Origin header) whose origin is not allowed: refused (false)
// with 403. An allowed one gets the CORS response headers.
bool AdmitOrigin(const HttpGateway::Options& options, const httplib::Request& req,
                 httplib::Response& res) {
  if (!req.has_header("Origin")) return true;
  std::string origin = req.get_header_value("Origin");
  if (!OriginAllowed(options, origin)) {
    Fail(res, 403, "permission_denied",
         absl::StrCat("origin '", origin, "' is not in --http_cors_origins"));
    return false;
  }
  res.set_header("Access-Control-Allow-Origin", origin);
  res.set_header("Vary", "Origin");
  res.set_header("Access-Control-Expose-Headers", "X-Request-Id");
  return true;
}

// A CORS preflight (OPTIONS): 204 with what the page may send, for an allowed origin.
void Preflight(const HttpGateway::Options& options, const httplib::Request& req,
               httplib::Response& res) {
  if (!req.has_header("Origin") || !req.has_header("Access-Control-Request-Method")) {
    return Fail(res, 400, "invalid_argument",
                "OPTIONS: a CORS preflight needs Origin and Access-Control-Request-Method");
  }
  if (!AdmitOrigin(options, req, res)) return;
  res.status = 204;
  res.set_header("Access-Control-Allow-Methods", "POST");
  res.set_header("Access-Control-Allow-Headers", kAllowedHeaders);
  res.set_header("Access-Control-Max-Age", "600");
}

void Serve(const HttpGateway::Options& options, grpc::GenericStub* stub,
           const httplib::Request& req, httplib::Response& res) {
  if (!AdmitOrigin(options, req, res)) return;
  std::string service = req.matches[1];
  std::string method = req.matches[2];
  const MethodDescriptor* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      absl::StrCat(service, ".", method));
  if (m == nullptr || !absl::StartsWith(service, "onestory.v1.")) {
    return Fail(res, 404, "unimplemented", absl::StrCat("no method ", req.path));
  }
  if (m->client_streaming() || m->server_streaming()) {
    return Fail(res, 501, "unimplemented",
                absl::StrCat(service, "/", method,
                             " is a stream: over HTTP only unary methods are "
                             "served (use gRPC for it)"));
  }
  std::string type = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
  type = type.substr(0, type.find(';'));
  absl::StripAsciiWhitespace(&type);
  if (type != "application/json") {
    return Fail(res, 415, "unknown",
                absl::StrCat("Content-Type: application/json required, not '",
                             req.get_header_value("Content-Type"), "'"));
  }
  if (req.body.size() > options.max_body_bytes) {
    return Fail(res, 413, "resource_exhausted",
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
    return Fail(res, 400, "invalid_argument",
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
      return Fail(res, 400, "invalid_argument",
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

  std::string request_id = Metadata(ctx.GetServerInitialMetadata(), "x-request-id");
  if (request_id.empty()) request_id = Metadata(ctx.GetServerTrailingMetadata(), "x-request-id");
  if (!request_id.empty()) res.set_header("X-Request-Id", request_id);
  if (!status.ok()) {
    ConnectCode c = ConnectCodeOf(status.error_code());
    return Fail(res, c.http, c.name, status.error_message());
  }
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
    return Fail(res, 500, "internal", "the response could not be converted to JSON");
  }
  res.status = 200;
  res.set_content(json, "application/json");
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const Options& options, std::shared_ptr<grpc::Channel> channel) {
  auto l = HttpListener::Bind(options.listen, "--http_listen");
  if (!l.ok()) return l.status();
  auto g = std::unique_ptr<HttpGateway>(new HttpGateway());
  g->http_ = *std::move(l);
  g->channel_ = std::move(channel);
  auto stub = std::make_shared<grpc::GenericStub>(g->channel_);
  httplib::Server& http = g->http_->server();
  // A body over the limit is read no further; up to it, Serve answers with Connect's error.
  http.set_payload_max_length(options.max_body_bytes + 1);
  http.Post(R"(/([A-Za-z0-9_.]+)/([A-Za-z0-9_]+))",
            [options, stub](const httplib::Request& req, httplib::Response& res) {
              Serve(options, stub.get(), req, res);
            });
  http.Options(R"(/.*)", [options](const httplib::Request& req, httplib::Response& res) {
    Preflight(options, req, res);
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      return Fail(res, 413, "resource_exhausted", "request body: over the limit");
    }
    Fail(res, res.status, res.status == 404 ? "unimplemented" : "unknown",
         absl::StrCat(req.method, " ", req.path,
                      ": not served (POST /onestory.v1.<Service>/<Method> with a JSON body)"));
  });
  g->http_->Serve();
  return g;
}

}  // namespace onestory::service
