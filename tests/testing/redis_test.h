// RedisTest: the fixture of the store tests: one real redis-server per test suite (started on a
// free port), flushed before each test, and a fresh redis::Client for each test.
//
//   class IdentityStoreTest : public onestory::testing::RedisTest {
//     void SetUp() override {
//       RedisTest::SetUp();
//       store_ = std::make_unique<IdentityStore>(client_.get());
//     }
//   };
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "libs/redis/client.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::testing {

class RedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new RedisForTest(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    redis_->FlushAll();
    client_ = std::make_unique<redis::Client>(redis_->ClientOptions());
  }

  static inline RedisForTest* redis_ = nullptr;
  std::unique_ptr<redis::Client> client_;
};

}  // namespace onestory::testing
