#include "libs/common/barrier.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace onestory {
namespace {

TEST(BarrierTest, ZeroCallsDoneAtOnce) {
  int calls = 0;
  absl::Status got = absl::UnknownError("not called");
  auto b = Barrier::Make(0, [&](absl::Status st) {
    ++calls;
    got = st;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(got.ok());
}

TEST(BarrierTest, DoneOnlyAfterTheLastArrives) {
  int calls = 0;
  auto b = Barrier::Make(3, [&](absl::Status st) {
    ++calls;
    EXPECT_TRUE(st.ok());
  });
  b->Arrive(absl::OkStatus());
  b->Arrive(absl::OkStatus());
  EXPECT_EQ(calls, 0);
  b->Arrive(absl::OkStatus());
  EXPECT_EQ(calls, 1);
}

TEST(BarrierTest, FirstErrorWins) {
  absl::Status got;
  auto b = Barrier::Make(4, [&](absl::Status st) { got = st; });
  b->Arrive(absl::OkStatus());
  b->Arrive(absl::UnavailableError("first"));
  b->Arrive(absl::NotFoundError("second"));
  b->Arrive(absl::OkStatus());
  EXPECT_EQ(got, absl::UnavailableError("first"));
}

TEST(BarrierTest, ArrivalsFromManyThreadsCallDoneOnce) {
  constexpr int kThreads = 8;
  constexpr int kEach = 1000;
  std::atomic<int> calls = 0;
  auto b = Barrier::Make(kThreads * kEach, [&](absl::Status st) {
    ++calls;
    EXPECT_TRUE(st.ok());
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([b] {
      for (int i = 0; i < kEach; ++i) b->Arrive(absl::OkStatus());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace onestory
