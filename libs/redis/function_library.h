// FunctionLibrary: a Redis Function library (Redis 7: FUNCTION LOAD, FCALL, FCALL_RO), loaded
// once per Redis, and Function, one function of it.
//
// OneStory's Lua lives in .lua files beside the library that owns it; tools/lua_library.py
// builds them into one library whose name carries its content hash ("onestory_<hash>", and each
// function's name ends in _<hash>), so two versions can be loaded side by side during a rolling
// upgrade. The generated code (libs/lua) defines lua::kLibrary and, per function, a struct
// naming its keys and arguments:
//
//   // At start-up: a Lua error fails the start, not a customer's call.
//   RETURN_IF_ERROR(redis::LoadLibrary(client, lua::kLibrary));
//   // A call (FCALL, or FCALL_RO for a function flagged no-writes):
//   lua::ContextGet call;
//   call.profile = ck.profile();
//   call.now_ms = NowMillis();
//   client->Fcall(call, deadline, [](absl::StatusOr<redis::Reply> r) { ... });
//
// Client::Fcall loads the library again and retries once when Redis answers that the function
// does not exist (a Redis restarted without persistence, FUNCTION FLUSH, a new replica promoted).
// Thread-safe (immutable values).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace onestory::redis {

class Client;

struct FunctionLibrary {
  // Where one .lua file's lines are in the library's code.
  struct Source {
    absl::string_view path;  // from the repository root: "libs/context/lua/get.lua"
    int first_line = 0;      // the library line holding the file's line 1
    int lines = 0;
  };

  absl::string_view name;     // "onestory_<version>", as in the code's "#!lua name=" line
  absl::string_view version;  // the content hash
  absl::string_view code;     // what FUNCTION LOAD is given
  absl::Span<const Source> sources;

  // The name a function is registered under: "<function>_<version>".
  std::string RegisteredName(absl::string_view function) const;

  // "libs/context/lua/get.lua:12" for line 130 of the library, "" for a line of no file (a
  // generated prologue or the "#!lua" line).
  std::string FileLine(int library_line) const;

  // error_text with every "user_function:<n>" (how Redis names a line of a library in compile
  // and run-time errors) followed by " (<file>:<line>)".
  std::string Locate(absl::string_view error_text) const;
};

// One function of a library, as generated: `name` without the version suffix.
struct Function {
  const FunctionLibrary* library = nullptr;
  absl::string_view name;
  bool read_only = false;  // flagged no-writes: called with FCALL_RO
};

// FUNCTION LOAD of `library`, blocking the caller (start-up, tools, tests; never a reactor or
// the client's loop thread): on a Redis Cluster, on every primary (and, from then on, on every
// node that becomes one). OK when Redis holds it already (same name: same code). Errors:
// INVALID_ARGUMENT for a library Redis refuses (a Lua error, a function name another library
// registered), its message naming the library and the file and line; others as the command
// failed (UNAVAILABLE without a connection; a Redis ACL refusal as INTERNAL "NOPERM ...").
absl::Status LoadLibrary(Client* client, const FunctionLibrary& library,
                         absl::Duration timeout = absl::Seconds(10));

// The status for FUNCTION LOAD's error reply: INVALID_ARGUMENT naming the library and the file
// and line at fault when the library is refused (IsLibraryRefused), else as ErrorToStatus.
absl::Status LoadError(const FunctionLibrary& library, absl::string_view error_text);

// True for the error Redis answers FCALL with when no such function is loaded.
bool IsFunctionNotFound(absl::string_view error_text);
// True for FUNCTION LOAD's answer when a library of that name is loaded already.
bool IsLibraryLoaded(absl::string_view error_text);
// True for FUNCTION LOAD's answer when the library's code is at fault (a Lua error, a function
// name another library holds), not the connection or the user's rights.
bool IsLibraryRefused(absl::string_view error_text);

}  // namespace onestory::redis
