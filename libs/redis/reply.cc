#include "libs/redis/reply.h"

#include <hiredis/hiredis.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace onestory::redis {

namespace {

// hiredis's reader builds Reply values directly: the root is allocated here, every other value
// is the element of its parent's array (sized when the array was created) at its index.
void* Place(const redisReadTask* task, Reply value) {
  if (task->parent == nullptr) return new Reply(std::move(value));
  Reply& slot = static_cast<Reply*>(task->parent->obj)->elements[task->idx];
  slot = std::move(value);
  return &slot;
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  Reply r;
  r.type = task->type == REDIS_REPLY_ERROR    ? Reply::Type::kError
           : task->type == REDIS_REPLY_STATUS ? Reply::Type::kStatus
                                              : Reply::Type::kString;
  r.str.assign(str, len);
  return Place(task, std::move(r));
}

void* CreateArray(const redisReadTask* task, int elements) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements.resize(static_cast<size_t>(std::max(elements, 0)));
  return Place(task, std::move(r));
}

void* CreateInteger(const redisReadTask* task, long long value) {  // NOLINT(runtime/int)
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = value;
  return Place(task, std::move(r));
}

void* CreateNil(const redisReadTask* task) { return Place(task, Reply()); }

// Called for a root only (a reply hiredis drops, or one left unfinished when the reader is freed).
void FreeObject(void* reply) { delete static_cast<Reply*>(reply); }

redisReplyObjectFunctions kReplyFunctions = {CreateString, CreateArray, CreateInteger, CreateNil,
                                             FreeObject};

}  // namespace

redisReader* NewReplyReader() { return redisReaderCreateWithFunctions(&kReplyFunctions); }

Reply Reply::FromHiredis(const redisReply* r) {
  Reply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(FromHiredis(r->element[i]));
      }
      break;
    default:
      out.type = Type::kNil;
  }
  return out;
}

absl::Status ErrorToStatus(absl::string_view text) {
  struct Mapping {
    absl::string_view prefix;
    absl::StatusCode code;
  };
  static constexpr Mapping kMappings[] = {
      {"OS_INVALID ", absl::StatusCode::kInvalidArgument},
      {"OS_NOT_FOUND ", absl::StatusCode::kNotFound},
      {"OS_CONFLICT ", absl::StatusCode::kFailedPrecondition},
      {"OS_EXISTS ", absl::StatusCode::kAlreadyExists},
      {"OS_LIMIT ", absl::StatusCode::kResourceExhausted},
      {"OS_BUSY ", absl::StatusCode::kAborted},
      {"OS_MOVED ", absl::StatusCode::kFailedPrecondition},
  };
  // Redis prefixes errors raised by a script with the script's location in some versions;
  // the OS_ marker is found wherever it stands.
  for (const auto& m : kMappings) {
    size_t pos = text.find(m.prefix);
    if (pos != absl::string_view::npos) {
      absl::string_view message = text.substr(pos + m.prefix.size());
      size_t script_suffix = message.find(" script: ");
      if (script_suffix != absl::string_view::npos) message = message.substr(0, script_suffix);
      return absl::Status(m.code, message);
    }
  }
  // "OOM command not allowed when used memory > 'maxmemory'.", bare or inside a script's error.
  if (absl::StartsWith(text, "OOM ") || absl::StrContains(text, "OOM command not allowed")) {
    return absl::ResourceExhaustedError(
        absl::StrCat("redis is out of memory (its maxmemory is reached); the write was refused "
                     "and changed nothing: ",
                     text));
  }
  // Compared by the whole first word: BUSYGROUP or BUSYKEY are not BUSY.
  absl::string_view code = text.substr(0, text.find(' '));
  for (absl::string_view transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (code == transient) return absl::UnavailableError(absl::StrCat("redis: ", text));
  }
  return absl::InternalError(absl::StrCat("redis error: ", text));
}

}  // namespace onestory::redis
