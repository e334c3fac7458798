// The pure parts of libs/steps: the failpoint check and ResumeAll's count. RecoverPendingHash is
// exercised on a real Redis by the erase and redaction recovery tests
// (tests/integration/services/privacy/privacy_service_test.cc).
#include "libs/steps/steps.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace onestory::steps {
namespace {

TEST(CheckFailpointTest, NoFailpointNeverStops) {
  EXPECT_TRUE(CheckFailpoint(nullptr, "erase.keys").ok());
}

TEST(CheckFailpointTest, StopsOnlyAtTheNamedStep) {
  std::vector<std::string> asked;
  Failpoint fp = [&](const std::string& step) {
    asked.push_back(step);
    return step == "merge.swap";
  };
  EXPECT_TRUE(CheckFailpoint(fp, "merge.stage").ok());
  EXPECT_EQ(CheckFailpoint(fp, "merge.swap"), absl::UnavailableError("failpoint merge.swap"));
  EXPECT_EQ(asked, (std::vector<std::string>{"merge.stage", "merge.swap"}));
}

TEST(ResumeAllTest, NoRunsAnswersZero) {
  absl::StatusOr<int> got = -1;
  ResumeAll<int>(
      {}, [](const int&, Report) { ADD_FAILURE() << "nothing to resume"; },
      [&](absl::StatusOr<int> n) { got = n; });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 0);
}

TEST(ResumeAllTest, CountsTheRunsThatFinished) {
  std::vector<Report> pending;
  absl::StatusOr<int> got = -1;
  int calls = 0;
  ResumeAll<int>(
      {1, 2, 3, 4}, [&](const int&, Report report) { pending.push_back(std::move(report)); },
      [&](absl::StatusOr<int> n) {
        ++calls;
        got = n;
      });
  ASSERT_EQ(pending.size(), 4u);
  pending[0](true);
  pending[1](false);
  pending[2](true);
  EXPECT_EQ(calls, 0);  // one run has not reported yet
  pending[3](false);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 2);
}

TEST(ResumeAllTest, AnErrorFailsThePassOnceAllHaveReported) {
  std::vector<Report> pending;
  absl::StatusOr<int> got = -1;
  int calls = 0;
  ResumeAll<std::string>(
      {"a", "b", "c"},
      [&](const std::string&, Report report) { pending.push_back(std::move(report)); },
      [&](absl::StatusOr<int> n) {
        ++calls;
        got = n;
      });
  pending[0](absl::UnavailableError("redis down"));
  pending[1](true);
  EXPECT_EQ(calls, 0);
  pending[2](absl::InternalError("later"));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.status(), absl::UnavailableError("redis down"));
}

}  // namespace
}  // namespace onestory::steps
