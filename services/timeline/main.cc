// onestory-timeline: the Timeline service alone, for scaled-out deployments (requires --redis).
#include "services/server/server_runner.h"

int main(int argc, char** argv) {
  return onestory::service::RunServer(argc, argv, {.timeline = true});
}
