#include "services/common/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace onestory::service {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;

// One reflection stream: each request read is answered by one response, in order.
class Reflector
    : public grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse> {
 public:
  explicit Reflector(const std::vector<std::string>* services) : services_(services) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the client is done asking
    response_.Clear();
    Answer(request_, &response_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed"));
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  void Answer(const ServerReflectionRequest& req, ServerReflectionResponse* out) {
    const DescriptorPool* pool = DescriptorPool::generated_pool();
    out->set_valid_host(req.host());
    *out->mutable_original_request() = req;
    switch (req.message_request_case()) {
      case ServerReflectionRequest::kFileByFilename:
        return SendFile(pool->FindFileByName(req.file_by_filename()), "file_by_filename",
                        req.file_by_filename(), out);
      case ServerReflectionRequest::kFileContainingSymbol:
        return SendFile(pool->FindFileContainingSymbol(req.file_containing_symbol()),
                        "file_containing_symbol", req.file_containing_symbol(), out);
      case ServerReflectionRequest::kFileContainingExtension: {
        const auto& ext = req.file_containing_extension();
        const google::protobuf::Descriptor* type =
            pool->FindMessageTypeByName(ext.containing_type());
        const google::protobuf::FieldDescriptor* field =
            type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
        return SendFile(field == nullptr ? nullptr : field->file(), "file_containing_extension",
                        absl::StrCat(ext.containing_type(), " ", ext.extension_number()), out);
      }
      case ServerReflectionRequest::kAllExtensionNumbersOfType: {
        const google::protobuf::Descriptor* type =
            pool->FindMessageTypeByName(req.all_extension_numbers_of_type());
        if (type == nullptr) {
          return Error(grpc::StatusCode::NOT_FOUND,
                       absl::StrCat("all_extension_numbers_of_type: no message type ",
                                    req.all_extension_numbers_of_type()),
                       out);
        }
        std::vector<const google::protobuf::FieldDescriptor*> fields;
        pool->FindAllExtensions(type, &fields);
        auto* numbers = out->mutable_all_extension_numbers_response();
        numbers->set_base_type_name(type->full_name());
        for (const auto* f : fields) numbers->add_extension_number(f->number());
        return;
      }
      case ServerReflectionRequest::kListServices:
        for (const std::string& name : *services_) {
          out->mutable_list_services_response()->add_service()->set_name(name);
        }
        return;
      case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
        return Error(grpc::StatusCode::INVALID_ARGUMENT,
                     "message_request: none of its fields is set", out);
    }
  }

  // `file` and every file it imports, transitively, except those this stream already sent.
  void SendFile(const FileDescriptor* file, absl::string_view field, absl::string_view asked,
                ServerReflectionResponse* out) {
    if (file == nullptr) {
      return Error(grpc::StatusCode::NOT_FOUND, absl::StrCat(field, ": ", asked, " not found"),
                   out);
    }
    auto* files = out->mutable_file_descriptor_response();
    std::vector<const FileDescriptor*> todo = {file};
    while (!todo.empty()) {
      const FileDescriptor* f = todo.back();
      todo.pop_back();
      if (!sent_.insert(f->name()).second) continue;
      google::protobuf::FileDescriptorProto proto;
      f->CopyTo(&proto);
      proto.SerializeToString(files->add_file_descriptor_proto());
      for (int i = 0; i < f->dependency_count(); ++i) todo.push_back(f->dependency(i));
    }
  }

  static void Error(grpc::StatusCode code, std::string message, ServerReflectionResponse* out) {
    out->mutable_error_response()->set_error_code(code);
    out->mutable_error_response()->set_error_message(std::move(message));
  }

  const std::vector<std::string>* services_;
  absl::flat_hash_set<std::string> sent_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

}  // namespace

grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse>*
ReflectionV1Service::ServerReflectionInfo(grpc::CallbackServerContext* /*ctx*/) {
  return new Reflector(&services_);
}

}  // namespace onestory::service
