// RunServer: everything a OneStory binary does besides its services — flags and environment,
// logging, the Redis client (or the embedded redis-server), health checking, reflection,
// signals and a clean shutdown.
//
//   int main(int argc, char** argv) {
//     return onestory::service::RunServer(argc, argv, {.identity = true});
//   }
//
// Every flag can also be set by an environment variable ONESTORY_<FLAG> (upper case, e.g.
// ONESTORY_REDIS=10.0.0.5:6379); a flag on the command line wins.
#pragma once

namespace onestory::service {

struct ServiceSet {
  bool identity = false;
  bool timeline = false;
  bool context = false;
  bool engagement = false;  // ConversationService, CaseService, AlertService
  // Without --redis, start and supervise a local redis-server (onestory-server only).
  bool allow_embedded = false;
};

// Returns the process exit code.
int RunServer(int argc, char** argv, ServiceSet services);

}  // namespace onestory::service
