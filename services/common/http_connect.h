// The Connect protocol's pieces the HTTP gateway's unary calls and event streams share: gRPC
// codes as Connect error codes and HTTP statuses, the error body, request messages from query
// parameters, and CORS by allow-list.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace onestory::service {

struct ConnectCode {
  int http;          // 400, 404, ...
  const char* name;  // "invalid_argument", "not_found", ...
};
ConnectCode ConnectCodeOf(grpc::StatusCode code);

// {"code": code, "message": message}, one line of JSON.
std::string ConnectErrorJson(absl::string_view code, absl::string_view message);

// Answers with Connect's error body and `http` as the status.
void FailHttp(httplib::Response& res, int http, absl::string_view code, absl::string_view message);
// The same for a gRPC status (its code's HTTP status and name).
void FailHttp(httplib::Response& res, const grpc::Status& status);

// The value of a header of a gRPC call's metadata ("" when absent).
std::string MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                          const char* key);

// Fills `message` from query parameters named by field paths in proto or JSON names
// ("tenant", "customer.customer_id", "customer.identifier.type=PHONE"), values as in proto3 JSON
// (enums by name, booleans true or false). Parameters in `skip` are left out. INVALID_ARGUMENT
// naming the parameter: an unknown field, a message or repeated field given a value, a value
// given twice, a value of the wrong type.
absl::Status MessageFromQuery(const std::multimap<std::string, std::string>& params,
                              const std::vector<std::string>& skip,
                              google::protobuf::Message* message);

// CORS by allow-list. A request with no Origin header (not from a web page), or from the page's
// own origin (Origin is http:// or https:// and the request's Host: the console served here), is
// admitted. One from an origin in `allowed` is admitted and its response carries the CORS
// headers; one from any other origin is refused with 403 (false).
bool AdmitOrigin(const std::vector<std::string>& allowed, const httplib::Request& req,
                 httplib::Response& res);

}  // namespace onestory::service
