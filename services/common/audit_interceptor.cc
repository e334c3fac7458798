#include "services/common/audit_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/free_text.h"

namespace onestory::service {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using grpc::experimental::InterceptionHookPoints;

// A singular field of `d` named `name` of type `type`, else null.
const FieldDescriptor* FieldOf(const google::protobuf::Descriptor* d, const std::string& name,
                               FieldDescriptor::Type type) {
  const FieldDescriptor* f = d->FindFieldByName(name);
  return f != nullptr && !f->is_repeated() && f->type() == type ? f : nullptr;
}

// The fields an audit entry reads of one message type, found by name once per type (looking
// them up on every call cost a GetContext about 5,600 instructions). Null where the type has
// none of that name and type.
struct AuditFields {
  explicit AuditFields(const google::protobuf::Descriptor* d) {
    tenant = FieldOf(d, "tenant", FieldDescriptor::TYPE_STRING);
    customer_id = FieldOf(d, "customer_id", FieldDescriptor::TYPE_STRING);
    target_customer_id = FieldOf(d, "target_customer_id", FieldDescriptor::TYPE_STRING);
    source_customer_id = FieldOf(d, "source_customer_id", FieldDescriptor::TYPE_STRING);
    event_id = FieldOf(d, "event_id", FieldDescriptor::TYPE_STRING);
    reason = FieldOf(d, "reason", FieldDescriptor::TYPE_STRING);
    customer = FieldOf(d, "customer", FieldDescriptor::TYPE_MESSAGE);
    identifier = FieldOf(d, "identifier", FieldDescriptor::TYPE_MESSAGE);
    type = FieldOf(d, "type", FieldDescriptor::TYPE_ENUM);
    if (const FieldDescriptor* f = d->FindFieldByName("events"); f != nullptr && f->is_repeated()) {
      events = f;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (!f->is_repeated() && f->type() == FieldDescriptor::TYPE_MESSAGE) messages.push_back(f);
    }
  }

  const FieldDescriptor* tenant = nullptr;
  const FieldDescriptor* customer_id = nullptr;
  const FieldDescriptor* target_customer_id = nullptr;
  const FieldDescriptor* source_customer_id = nullptr;
  const FieldDescriptor* event_id = nullptr;
  const FieldDescriptor* reason = nullptr;
  const FieldDescriptor* customer = nullptr;     // a CustomerRef
  const FieldDescriptor* identifier = nullptr;   // a CustomerRef's Identifier
  const FieldDescriptor* type = nullptr;         // an Identifier's type
  const FieldDescriptor* events = nullptr;       // repeated
  std::vector<const FieldDescriptor*> messages;  // every singular message field
};

// The AuditFields of `m`'s type. Thread-safe: built once per type, then only read; each thread
// keeps the ones it has used, so a call's lookups take no lock.
const AuditFields& FieldsOf(const Message& m) {
  using Descriptor = google::protobuf::Descriptor;
  const Descriptor* d = m.GetDescriptor();
  thread_local absl::flat_hash_map<const Descriptor*, const AuditFields*> seen;
  if (auto it = seen.find(d); it != seen.end()) return *it->second;
  static absl::Mutex mu(absl::kConstInit);
  static auto* by_type ABSL_GUARDED_BY(mu) =
      new absl::flat_hash_map<const Descriptor*, std::unique_ptr<const AuditFields>>();
  absl::MutexLock lock(&mu);
  auto it = by_type->find(d);
  if (it == by_type->end()) it = by_type->emplace(d, std::make_unique<AuditFields>(d)).first;
  seen.emplace(d, it->second.get());
  return *it->second;
}

// The string field `f` of `m` (one of its AuditFields); empty when `f` is null.
std::string StringField(const Message& m, const FieldDescriptor* f) {
  return f == nullptr ? std::string() : m.GetReflection()->GetString(m, f);
}

// `customer_id` of `m` or of one of its singular message fields (GetContext's profile).
std::string CustomerIdIn(const Message& m) {
  const AuditFields& fields = FieldsOf(m);
  if (std::string id = StringField(m, fields.customer_id); !id.empty()) return id;
  const google::protobuf::Reflection* r = m.GetReflection();
  for (const FieldDescriptor* f : fields.messages) {
    if (!r->HasField(m, f)) continue;
    const Message& inner = r->GetMessage(m, f);
    if (std::string id = StringField(inner, FieldsOf(inner).customer_id); !id.empty()) return id;
  }
  return {};
}

struct RequestFacts {
  std::string tenant;
  std::string customer_id;
  std::string named_by;  // identifier type only
  std::string detail;
};

RequestFacts FactsOf(const privacy::Redactor* redactor, const Message& req) {
  RequestFacts out;
  const AuditFields& fields = FieldsOf(req);
  const google::protobuf::Reflection* r = req.GetReflection();
  out.tenant = StringField(req, fields.tenant);
  if (fields.customer != nullptr && r->HasField(req, fields.customer)) {
    const Message& ref = r->GetMessage(req, fields.customer);
    const AuditFields& ref_fields = FieldsOf(ref);
    out.customer_id = StringField(ref, ref_fields.customer_id);
    if (out.customer_id.empty() && ref_fields.identifier != nullptr &&
        ref.GetReflection()->HasField(ref, ref_fields.identifier)) {
      const Message& ident = ref.GetReflection()->GetMessage(ref, ref_fields.identifier);
      if (const FieldDescriptor* type = FieldsOf(ident).type; type != nullptr) {
        absl::string_view name = ident.GetReflection()->GetEnum(ident, type)->name();
        absl::ConsumePrefix(&name, "IDENTIFIER_TYPE_");
        out.named_by = absl::AsciiStrToLower(name);
      }
    }
  }
  if (out.customer_id.empty()) out.customer_id = StringField(req, fields.customer_id);
  if (out.customer_id.empty()) out.customer_id = StringField(req, fields.target_customer_id);
  // Only what passes validation is recorded: a refused request may carry anything (an email in
  // a customer id field, megabytes), and none of it belongs in a log kept for a year.
  if (!ValidateCustomerId("customer_id", out.customer_id).ok()) out.customer_id = "";
  std::vector<std::string> detail;
  if (std::string source = StringField(req, fields.source_customer_id);
      ValidateCustomerId("source", source).ok()) {
    detail.push_back(absl::StrCat("source=", source));
  }
  if (fields.events != nullptr) {
    detail.push_back(absl::StrCat("events=", r->FieldSize(req, fields.events)));
  }
  if (std::string id = StringField(req, fields.event_id);
      !id.empty() && ValidateToken("event_id", id, 128, false).ok()) {
    detail.push_back(absl::StrCat("event_id=", id));
  }
  // Free text the caller was told must hold no personal data; cut at the documented 200 bytes,
  // and masked like every stored free-text field (a card typed here anyway stays out of the log).
  if (std::string reason = StringField(req, fields.reason);
      !reason.empty() && ValidateText("reason", reason, 200, false).ok()) {
    detail.push_back(absl::StrCat("reason=", privacy::OrCardsOnly(redactor).Mask(reason)));
  }
  out.detail = absl::StrJoin(detail, " ");
  return out;
}

constexpr absl::string_view kAuditedBeforeWork[] = {
    "onestory.v1.PrivacyService/EraseCustomer", "onestory.v1.PrivacyService/ExportCustomer",
    "onestory.v1.PrivacyService/RedactEvent",   "onestory.v1.IdentityService/Merge",
    "onestory.v1.IdentityService/Unmerge",
};

// The entry of a call to `method` by `caller` about `request`; `response_customer` (from the
// answer) wins over the request's customer when set.
v1::AuditEntry EntryOf(const Caller& caller, const std::string& method, const RequestFacts& request,
                       const std::string& response_customer, const std::string& code) {
  v1::AuditEntry e;
  e.set_key_id(caller.key_id);
  e.set_agent(caller.agent);
  e.set_method(method);
  e.set_request_id(caller.request_id);
  e.set_customer_id(response_customer.empty() ? request.customer_id : response_customer);
  if (e.customer_id().empty() || request.customer_id.empty()) {
    e.set_named_by(request.named_by);
  }
  e.set_code(code);
  std::string detail = request.detail;
  if (!caller.tenant.empty() && request.tenant != caller.tenant) {
    absl::StrAppend(&detail, detail.empty() ? "" : " ", "asked_tenant=",
                    ValidateTenant(request.tenant).ok() ? request.tenant : "<invalid>");
    e.clear_customer_id();  // another tenant's id means nothing here
  }
  e.set_detail(std::move(detail));
  return e;
}

void CountRejected(absl::string_view reason, absl::string_view method) {
  metrics::Registry::Global()
      .GetCounter("onestory_auth_rejected_total", "Calls refused for a missing or unknown API key",
                  {{"reason", std::string(reason)}})
      ->Increment();
  static std::atomic<int64_t> last_log_s{0};
  int64_t now_s = absl::ToUnixSeconds(absl::Now());
  int64_t last = last_log_s.load(std::memory_order_relaxed);
  if (now_s != last && last_log_s.compare_exchange_strong(last, now_s)) {
    Log(LogLevel::kWarning, "auth.rejected",
        {{"method", std::string(method)}, {"reason", std::string(reason)}});
  }
}

class AuditInterceptor : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(grpc::experimental::ServerRpcInfo* info, const Authenticator* auth,
                   audit::AuditLog* log, const privacy::Redactor* redactor)
      : info_(info), auth_(auth), log_(log), redactor_(redactor) {
    absl::string_view method = info->method() ? info->method() : "";
    absl::ConsumePrefix(&method, "/");
    method_ = std::string(method);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        !have_request_) {
      if (void* m = methods->GetRecvMessage(); m != nullptr) {
        // Generated messages derive from Message as their first and only base.
        request_ = FactsOf(redactor_, *static_cast<const Message*>(m));
        have_request_ = true;
        // A stream may stay open for hours: its opening is recorded now, its end later
        // (unless its handler records the opening itself, or the key's rate limit will refuse
        // it before its handler runs).
        if (info_->type() == grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING &&
            !AuditedBeforeWork(method_) && !auth_->OutOfCalls(*info_->server_context())) {
          Record("STARTED");
          started_ = true;
        }
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE) &&
        response_customer_.empty()) {
      if (const void* m = methods->GetSendMessage(); m != nullptr) {
        response_customer_ = CustomerIdIn(*static_cast<const Message*>(m));
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (!IsRateLimited(status) || started_) {
        Record(StatusCodeName(status.error_code()), &status);
      }
    }
    methods->Proceed();
  }

 private:
  // `status`: the call's final status (null for a stream's opening).
  void Record(const std::string& code, const grpc::Status* status = nullptr) {
    absl::StatusOr<Caller> caller = auth_->Identify(*info_->server_context());
    if (!caller.ok()) {
      if (status != nullptr) {
        absl::string_view why = caller.status().message();
        CountRejected(why == "unknown API key"                ? "unknown_key"
                      : absl::StartsWith(why, "agent token:") ? "bad_token"
                                                              : "no_key",
                      method_);
      }
      return;
    }
    // A key is only ever recorded in its own tenant's log.
    std::string tenant = caller->tenant.empty() ? request_.tenant : caller->tenant;
    if (ValidateTenant(tenant).ok() == false) return;
    log_->Record(tenant, EntryOf(*caller, method_, request_, response_customer_, code));
  }

  static std::string StatusCodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  grpc::experimental::ServerRpcInfo* info_;
  const Authenticator* auth_;
  audit::AuditLog* log_;
  const privacy::Redactor* redactor_;
  std::string method_;
  bool have_request_ = false;
  bool started_ = false;  // a STARTED entry was written
  RequestFacts request_;
  std::string response_customer_;
};

// Pass-through for calls outside the OneStory API (health checks, reflection).
class NoAudit : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }
};

}  // namespace

bool AuditedBeforeWork(absl::string_view method) {
  for (absl::string_view m : kAuditedBeforeWork) {
    if (m == method) return true;
  }
  return false;
}

void AuditBefore(audit::AuditLog* log, const privacy::Redactor* redactor, const Caller& caller,
                 absl::string_view method, const google::protobuf::Message& request,
                 absl::Time deadline, absl::AnyInvocable<void(absl::Status)> then) {
  if (log == nullptr) return then(absl::OkStatus());
  RequestFacts facts = FactsOf(redactor, request);
  std::string tenant = caller.tenant.empty() ? facts.tenant : caller.tenant;
  log->RecordBefore(
      tenant, EntryOf(caller, std::string(method), facts, "", "STARTED"), deadline,
      [then = std::move(then)](absl::Status st) mutable {
        if (st.ok()) return then(absl::OkStatus());
        then(absl::UnavailableError(absl::StrCat(
            "the audit log could not record this call, so nothing was done (retry later): ",
            st.message())));
      });
}

grpc::experimental::Interceptor* AuditInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() == nullptr || !absl::StartsWith(info->method(), "/onestory.v1.")) {
    return new NoAudit();
  }
  return new AuditInterceptor(info, auth_, log_, redactor_);
}

}  // namespace onestory::service
