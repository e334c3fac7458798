// FunctionTest: the fixture of the tests of OneStory's Redis functions themselves
// (libs/*/lua/*.lua): one real redis-server for the binary, with the function library loaded,
// flushed before each test, hand-built keys, and calls straight to the functions (no store, no
// gRPC), so edge cases that are awkward to reach from outside are reached directly.
//
// Every command a function runs is watched (KeyAudit): when the binary ends, a function that
// touched a key it did not declare in KEYS fails it, and so does a function of the library no
// test called.
//
//   TEST_F(FunctionTest, Something) {
//     Run({"HSET", ck.profile(), "created_at", "1"});
//     lua::ContextGet call;
//     call.profile = ck.profile();
//     absl::StatusOr<redis::Reply> r = Call(call);
//   }
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::testing {

// The redis-server the functions are tested on (started by the binary's test environment).
RedisForTest* FunctionTestRedis();

class FunctionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = FunctionTestRedis();
    redis_->FlushAll();  // keeps the functions
    client_ = std::make_unique<redis::Client>(redis_->ClientOptions());
  }

  redis::Reply Run(const std::vector<std::string>& argv) { return redis_->Run(argv); }

  template <typename CallT>
  absl::StatusOr<redis::Reply> Call(const CallT& call) {
    return Await<redis::Reply>(
        [&](Callback<redis::Reply> done) { client_->Fcall(call, Deadline(), std::move(done)); });
  }

  RedisForTest* redis_ = nullptr;
  std::unique_ptr<redis::Client> client_;
};

}  // namespace onestory::testing
