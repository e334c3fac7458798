// Script: a Lua script run with EVALSHA, loaded on first use.
//
//   static const Script kAppend("timeline.append", R"lua( ... )lua");
//   client->Eval(kAppend, {key1, key2}, {arg1}, deadline, callback);
//
// Client::Eval sends EVALSHA and, when Redis answers NOSCRIPT (a restarted or new server),
// sends the body with EVAL once, which caches it again. Thread-safe (immutable).
#pragma once

#include <string>
#include "absl/strings/string_view.h"

namespace onestory::redis {

class Script {
 public:
  Script(absl::string_view name, absl::string_view body);
  const std::string& name() const { return name_; }
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string name_;
  std::string body_;
  std::string sha1_;  // lower-case hex, as SCRIPT LOAD returns it
};

// SHA-1 of data as 40 lower-case hex digits.
std::string Sha1Hex(absl::string_view data);

}  // namespace onestory::redis
