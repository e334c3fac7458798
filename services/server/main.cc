// onestory-server: every OneStory service in one process. Without --redis it starts and
// supervises its own redis-server under --data_dir (the embedded default).
#include "services/server/server_runner.h"

int main(int argc, char** argv) {
  return onestory::service::RunServer(
      argc, argv, {.identity = true,
                                     .timeline = true,
                                     .context = true,
                                     .engagement = true,
                                     .allow_embedded = true});
}
