// onestory-engagement: the Conversation, Case and Alert services alone, for scaled-out
// deployments (requires --redis). Every instance also scans for overdue promises.
#include "services/server/server_runner.h"

int main(int argc, char** argv) {
  return onestory::service::RunServer(argc, argv, {.engagement = true});
}
