#include "services/common/http_connect.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace onestory::service {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

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

std::string ConnectErrorJson(absl::string_view code, absl::string_view message) {
  google::protobuf::Struct body;
  (*body.mutable_fields())["code"].set_string_value(std::string(code));
  (*body.mutable_fields())["message"].set_string_value(std::string(message));
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(body, &json);
  return json;
}

void FailHttp(httplib::Response& res, int http, absl::string_view code, absl::string_view message) {
  res.status = http;
  res.set_content(ConnectErrorJson(code, message), "application/json");
}

void FailHttp(httplib::Response& res, const grpc::Status& status) {
  ConnectCode c = ConnectCodeOf(status.error_code());
  FailHttp(res, c.http, c.name, status.error_message());
}

std::string MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                          const char* key) {
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

namespace {

// The field of `type` named `name` in proto ("customer_id") or JSON ("customerId") spelling.
const FieldDescriptor* FindField(const Descriptor* type, const std::string& name) {
  if (const FieldDescriptor* f = type->FindFieldByName(name)) return f;
  for (int k = 0; k < type->field_count(); ++k) {
    if (type->field(k)->json_name() == name) return type->field(k);
  }
  return nullptr;
}

}  // namespace

absl::Status MessageFromQuery(const std::multimap<std::string, std::string>& params,
                              const std::vector<std::string>& skip,
                              google::protobuf::Message* message) {
  // Built as proto3 JSON, then parsed: the JSON parser's rules (enum names, number ranges) apply.
  google::protobuf::Struct root;
  for (const auto& [name, value] : params) {
    if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    auto bad = [&name](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("query parameter '", name, "': ", why));
    };
    const Descriptor* type = message->GetDescriptor();
    google::protobuf::Struct* node = &root;
    std::vector<std::string> path = absl::StrSplit(name, '.');
    for (size_t k = 0; k < path.size(); ++k) {
      const FieldDescriptor* f = FindField(type, path[k]);
      if (f == nullptr) return bad(absl::StrCat("no field '", path[k], "' in ", type->full_name()));
      if (f->is_repeated()) return bad("a repeated field cannot be given in the query");
      google::protobuf::Value& v = (*node->mutable_fields())[f->json_name()];
      bool last = k + 1 == path.size();
      if (!last) {
        if (f->message_type() == nullptr) return bad(absl::StrCat("'", path[k], "' has no fields"));
        if (v.kind_case() == google::protobuf::Value::kStringValue) return bad("given twice");
        node = v.mutable_struct_value();
        type = f->message_type();
        continue;
      }
      if (f->message_type() != nullptr) {
        return bad(absl::StrCat("'", path[k], "' is a message: name its fields ('", name, ".x')"));
      }
      if (v.kind_case() != google::protobuf::Value::KIND_NOT_SET) return bad("given twice");
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
        if (value != "true" && value != "false") return bad("true or false");
        v.set_bool_value(value == "true");
      } else {
        v.set_string_value(value);  // proto3 JSON takes numbers as strings too
      }
    }
  }
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(root, &json);
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, message, parse);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("query: not a ",
                                                   message->GetDescriptor()->full_name(), ": ",
                                                   parsed.message().as_string()));
  }
  return absl::OkStatus();
}

bool AdmitOrigin(const std::vector<std::string>& allowed, const httplib::Request& req,
                 httplib::Response& res) {
  if (!req.has_header("Origin")) return true;
  std::string origin = req.get_header_value("Origin");
  // The console served here, or a page behind the same TLS-terminating proxy: its own origin
  // (what a browser sends as Origin for the host it sent the request to) is no cross-origin call.
  std::string host = req.get_header_value("Host");
  if (!host.empty() &&
      (origin == absl::StrCat("http://", host) || origin == absl::StrCat("https://", host))) {
    return true;
  }
  if (std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
    FailHttp(res, 403, "permission_denied",
             absl::StrCat("origin '", origin, "' is not in --http_cors_origins"));
    return false;
  }
  res.set_header("Access-Control-Allow-Origin", origin);
  res.set_header("Vary", "Origin");
  res.set_header("Access-Control-Expose-Headers", "X-Request-Id");
  return true;
}

}  // namespace onestory::service
