#include "libs/retention/retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace onestory::retention {
namespace {

using ::testing::HasSubstr;

Limits Make(absl::Duration max_age, int64_t max_events, absl::Duration inactive_after) {
  Limits l;
  l.max_age = max_age;
  l.max_events = max_events;
  l.inactive_after = inactive_after;
  return l;
}

TEST(ParseRulesTest, EmptyFileMeansDefaults) {
  absl::StatusOr<Rules> r = ParseRules("");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fallback, DefaultLimits());
  EXPECT_TRUE(r->tenants.empty());
  EXPECT_EQ(DefaultLimits(), Make(absl::ZeroDuration(), 100000, absl::ZeroDuration()));
}

TEST(ParseRulesTest, Units) {
  absl::StatusOr<Rules> r = ParseRules(
      "a max_age=45s\n"
      "b max_age=30m\n"
      "c max_age=36h\n"
      "d max_age=90d inactive_after=730d\n"
      "e max_age=0 inactive_after=0 max_events=0\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tenants.at("a").max_age, absl::Seconds(45));
  EXPECT_EQ(r->tenants.at("b").max_age, absl::Minutes(30));
  EXPECT_EQ(r->tenants.at("c").max_age, absl::Hours(36));
  EXPECT_EQ(r->tenants.at("d").max_age, absl::Hours(90 * 24));
  EXPECT_EQ(r->tenants.at("d").inactive_after, absl::Hours(730 * 24));
  EXPECT_EQ(r->tenants.at("e"), Make(absl::ZeroDuration(), 0, absl::ZeroDuration()));
}

TEST(ParseRulesTest, TenantsInheritStarAndDefaults) {
  absl::StatusOr<Rules> r = ParseRules(
      "# retention\n"
      "\n"
      "acme  max_age=90d     # events\n"
      "bigco\tmax_events=0\n"
      "*     max_events=10000 inactive_after=730d\n"
      "plain\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fallback, Make(absl::ZeroDuration(), 10000, absl::Hours(730 * 24)));
  // A '*' line after a tenant's line still applies to it.
  EXPECT_EQ(r->tenants.at("acme"), Make(absl::Hours(90 * 24), 10000, absl::Hours(730 * 24)));
  EXPECT_EQ(r->tenants.at("bigco"), Make(absl::ZeroDuration(), 0, absl::Hours(730 * 24)));
  EXPECT_EQ(r->tenants.at("plain"), r->fallback);
}

TEST(ParseRulesTest, WithoutStarUnlistedSettingsAreDefaults) {
  absl::StatusOr<Rules> r = ParseRules("acme max_age=1d\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fallback, DefaultLimits());
  EXPECT_EQ(r->tenants.at("acme"), Make(absl::Hours(24), kDefaultMaxEvents, absl::ZeroDuration()));
}

void ExpectError(absl::string_view text, absl::string_view message) {
  absl::StatusOr<Rules> r = ParseRules(text);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(std::string(message))) << text;
}

TEST(ParseRulesTest, ErrorsNameTheLine) {
  ExpectError("# c\nacme max_age=90\n", "line 2: max_age: '90' needs a unit");
  ExpectError("acme max_age=90w\n", "line 1: max_age: '90w' needs a unit");
  ExpectError("acme max_age=-5d\n", "line 1: max_age: '-5d' is not a whole number");
  ExpectError("acme max_age=d\n", "line 1: max_age: 'd' is not a whole number");
  ExpectError("acme max_age=1.5d\n", "line 1: max_age: '1.5d' is not a whole number");
  ExpectError("acme inactive_after=soon\n", "line 1: inactive_after: 'soon' needs a unit");
  ExpectError("\n\nacme max_events=-1\n", "line 3: max_events: '-1' is not a whole number");
  ExpectError("acme max_events=10k\n", "line 1: max_events: '10k' is not a whole number");
  ExpectError("acme max_events=\n", "line 1: max_events: '' is not a whole number");
  ExpectError("acme max_age=99999999999999999d\n",
              "line 1: max_age: '99999999999999999d' is too large");
  ExpectError("acme ttl=3d\n", "line 1: unknown setting 'ttl'");
  ExpectError("acme 3d\n", "line 1: '3d': expected <setting>=<value>");
  ExpectError("acme max_age=1d max_age=2d\n", "line 1: max_age given twice");
  ExpectError("ac:me max_age=1d\n", "line 1: 'ac:me' is neither '*' nor a tenant");
  ExpectError("acme max_age=1d\n\nacme max_events=5\n",
              "line 3: 'acme' is listed already on line 1");
  ExpectError("* max_age=1d\n* max_events=5\n", "line 2: '*' is listed already on line 1");
}

std::string WriteFile(const std::string& text) {
  std::string path = absl::StrCat(::testing::TempDir(), "/retention_",
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::ofstream(path) << text;
  return path;
}

TEST(PolicyTest, DefaultsWithoutAFile) {
  Policy p;
  EXPECT_EQ(p.For("acme"), DefaultLimits());
  EXPECT_EQ(p.Reload().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PolicyTest, LoadAndReloadKeepTheOldRulesOnError) {
  std::string path = WriteFile("* max_events=50\nacme max_age=2d\n");
  Policy p;
  ASSERT_TRUE(p.Load(path).ok());
  EXPECT_EQ(p.For("acme"), Make(absl::Hours(48), 50, absl::ZeroDuration()));
  EXPECT_EQ(p.For("other"), Make(absl::ZeroDuration(), 50, absl::ZeroDuration()));

  std::ofstream(path) << "acme max_age=2x\n";
  absl::Status st = p.Reload();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr(path + ": line 1: max_age"));
  EXPECT_EQ(p.For("acme"), Make(absl::Hours(48), 50, absl::ZeroDuration()));

  std::ofstream(path) << "acme max_age=3d\n";
  ASSERT_TRUE(p.Reload().ok());
  EXPECT_EQ(p.For("acme"), Make(absl::Hours(72), kDefaultMaxEvents, absl::ZeroDuration()));
  EXPECT_EQ(p.For("other"), DefaultLimits());

  std::remove(path.c_str());
  EXPECT_EQ(p.Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(p.For("acme"), Make(absl::Hours(72), kDefaultMaxEvents, absl::ZeroDuration()));
}

}  // namespace
}  // namespace onestory::retention
