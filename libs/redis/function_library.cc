#include "libs/redis/function_library.h"

#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/redis/client.h"

namespace onestory::redis {

std::string FunctionLibrary::RegisteredName(absl::string_view function) const {
  return absl::StrCat(function, "_", version);
}

std::string FunctionLibrary::FileLine(int library_line) const {
  for (const Source& s : sources) {
    if (library_line >= s.first_line && library_line < s.first_line + s.lines) {
      return absl::StrCat(s.path, ":", library_line - s.first_line + 1);
    }
  }
  return "";
}

std::string FunctionLibrary::Locate(absl::string_view text) const {
  static constexpr absl::string_view kMarker = "user_function:";
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find(kMarker, pos);
    if (at == absl::string_view::npos) break;
    size_t digits = at + kMarker.size();
    size_t end = digits;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    absl::StrAppend(&out, text.substr(pos, end - pos));
    int line = 0;
    if (end > digits && absl::SimpleAtoi(text.substr(digits, end - digits), &line)) {
      if (std::string where = FileLine(line); !where.empty()) {
        absl::StrAppend(&out, " (", where, ")");
      }
    }
    pos = end;
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

bool IsFunctionNotFound(absl::string_view error_text) {
  return absl::StartsWith(error_text, "ERR Function not found");
}

bool IsLibraryRefused(absl::string_view error_text) {
  // A compile error, an error while the library's top level ran (registering its functions),
  // or a function name another library registered.
  return absl::StartsWith(error_text, "ERR Error compiling function") ||
         absl::StartsWith(error_text, "ERR Error registering functions") ||
         (absl::StartsWith(error_text, "ERR Function ") &&
          absl::StrContains(error_text, " already exists"));
}

bool IsLibraryLoaded(absl::string_view error_text) {
  return absl::StartsWith(error_text, "ERR Library '") &&
         absl::StrContains(error_text, "' already exists");
}

absl::Status LoadLibrary(Client* client, const FunctionLibrary& library, absl::Duration timeout) {
  // A cluster: on every primary now, and on every node that becomes one later.
  client->RememberLibrary(&library);
  for (absl::StatusOr<Reply>& r : client->CommandOnEveryPrimarySync(
           {"FUNCTION", "LOAD", std::string(library.code)}, timeout)) {
    if (r.ok()) continue;
    // Redis's own text, as ErrorToStatus kept it.
    absl::string_view text = r.status().message();
    if (!absl::IsInternal(r.status()) || !absl::ConsumePrefix(&text, "redis error: ")) {
      return r.status();
    }
    if (IsLibraryLoaded(text)) continue;
    return LoadError(library, text);
  }
  return absl::OkStatus();
}

absl::Status LoadError(const FunctionLibrary& library, absl::string_view error_text) {
  if (IsLibraryRefused(error_text)) {
    return absl::InvalidArgumentError(absl::StrCat("Redis refused function library ", library.name,
                                                   ": ", library.Locate(error_text)));
  }
  return ErrorToStatus(error_text);
}

}  // namespace onestory::redis
