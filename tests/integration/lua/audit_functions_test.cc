// The audit functions (libs/audit/lua/) called directly on a hand-built log: the list's pages
// (newest first, filtered by customer, at most 10,000 entries looked at per call, the last page
// without "more"). Writing entries (XADD, trims) is libs/audit's: audit_log_test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/audit_list.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

class AuditFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  AuditList List(const std::string& start, int64_t page_size, const std::string& customer) {
    AuditList call;
    call.log = log_;
    call.start = start;
    call.page_size = page_size;
    call.customer_id = customer;
    return call;
  }
  struct Page {
    int64_t more = -1;
    std::string last;
    std::vector<std::string> entries;
  };
  Page ListPage(const AuditList& call) {
    Page page;
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->elements.size() != 3) return page;
    page.more = r->elements[0].integer;
    page.last = r->elements[1].str;
    for (const redis::Reply& e : r->elements[2].elements) {
      // {stream id, entry}: the id is what libs/audit merges the buckets by.
      EXPECT_EQ(e.elements.size(), 2u);
      if (e.elements.size() == 2) page.entries.push_back(e.elements[1].str);
    }
    return page;
  }
  // Entries at stream ids <first>-0 .. <first + n - 1>-0 ("entry<i>"), of customer `customer`
  // (or cus_<i % 3> when empty).
  void Fill(int n, const std::string& customer, int first = 1) {
    std::string who = customer.empty() ? "''" : absl::StrCat("'", customer, "'");
    Run({"EVAL",
         absl::StrCat("for i = ", first, ", ", first + n - 1, " do local c = ", who,
                      " if c == '' then c = 'cus_' .. (i % 3) end "
                      "redis.call('XADD', KEYS[1], i .. '-0', 'c', c, 'e', 'entry' .. i) end"),
         "1", log_});
  }

  const std::string log_ = keys::TenantKeys("acme", 3).audit_log();
};

TEST_F(AuditFunctionsTest, ListPagesNewestFirstFilteredByCustomer) {
  Fill(30, "");
  Page p = ListPage(List("+", 4, "cus_1"));
  EXPECT_EQ(p.more, 1);
  EXPECT_EQ(p.entries, (std::vector<std::string>{"entry28", "entry25", "entry22", "entry19"}));
  EXPECT_EQ(p.last, "19-0");
  p = ListPage(List("(" + p.last, 100, "cus_1"));
  EXPECT_EQ(p.more, 0);
  EXPECT_EQ(p.entries.size(), 6u);  // 16, 13, ..., 1
  EXPECT_EQ(p.entries.back(), "entry1");
  // A page that ends on the log's first entry says so.
  p = ListPage(List("+", 30, ""));
  EXPECT_EQ(p.entries.size(), 30u);
  EXPECT_EQ(p.more, 0);
  p = ListPage(List("+", 10, "cus_9"));
  EXPECT_EQ(p.more, 0);
  EXPECT_TRUE(p.entries.empty());
}

TEST_F(AuditFunctionsTest, ListLooksAtTenThousandEntriesAtMostPerCall) {
  Run({"XADD", log_, "1-0", "c", "cus_2", "e", "old"});  // below the first 10,000 looked at
  Fill(12000, "cus_1", 2);
  Page p = ListPage(List("+", 10, "cus_2"));
  EXPECT_EQ(p.more, 1);
  EXPECT_TRUE(p.entries.empty());
  EXPECT_EQ(p.last, "2002-0");  // 12001-0 .. 2002-0: 10,000 entries
  p = ListPage(List("(" + p.last, 10, "cus_2"));
  EXPECT_EQ(p.entries, std::vector<std::string>{"old"});
  EXPECT_EQ(p.more, 0);
}

}  // namespace
}  // namespace onestory::lua
