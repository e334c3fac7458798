// The bad-input catalogue of IdentityService.Merge, Unmerge, GetMergeHistory and SuggestMerges.
// Each case is its own tenant; bad_input_test.cc runs them all (see bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

constexpr char kThirdCrm[] = "crm-third";  // a third customer, created by `prepare`

std::vector<BadInputCase> MergeRequestCases() {
  // Otherwise valid merges of s.customer into s.other: a check that let one through would move
  // every key of both customers.
  auto merge = [](std::function<void(v1::MergeRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::MergeRequest r = MergeOf(s);
      spoil(r, s);
      return api.Merge(r);
    };
  };
  const std::string id65(65, 'c');
  return {
      {.name = "MergeTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.clear_tenant(); })},
      {.name = "MergeTenantOpenBrace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = merge([](v1::MergeRequest& r, const State& s) {
         r.set_tenant(absl::StrCat(s.tenant, "{x"));
       })},
      {.name = "MergeSourceEmpty",
       .code = kInvalid,
       .message_names = {"source_customer_id"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.clear_source_customer_id(); })},
      {.name = "MergeSourceCloseBrace",
       .code = kInvalid,
       .message_names = {"source_customer_id"},
       .send = merge([](v1::MergeRequest& r, const State& s) {
         r.set_source_customer_id(absl::StrCat(s.customer, "}"));
       })},
      {.name = "MergeTargetEmpty",
       .code = kInvalid,
       .message_names = {"target_customer_id"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.clear_target_customer_id(); })},
      {.name = "MergeTarget65Chars",
       .code = kInvalid,
       .message_names = {"target_customer_id"},
       .send =
           merge([id65](v1::MergeRequest& r, const State&) { r.set_target_customer_id(id65); })},
      {.name = "MergeTargetColon",
       .code = kInvalid,
       .message_names = {"target_customer_id"},
       .send = merge([](v1::MergeRequest& r, const State& s) {
         r.set_target_customer_id(absl::StrCat(s.other, ":p"));
       })},
      {.name = "MergeSourceIsTarget",
       .code = kInvalid,
       .message_names = {"target_customer_id"},
       .send = merge(
           [](v1::MergeRequest& r, const State& s) { r.set_target_customer_id(s.customer); })},
      {.name = "MergeReasonMissing",
       .code = kInvalid,
       .message_names = {"reason"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.clear_reason(); })},
      {.name = "MergeReasonOver1KiB",
       .code = kInvalid,
       .message_names = {"reason"},
       .send =
           merge([](v1::MergeRequest& r, const State&) { r.set_reason(std::string(1025, 'r')); })},
      {.name = "MergeActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.clear_actor(); })},
      {.name = "MergeActorTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = merge([](v1::MergeRequest& r, const State&) {
         r.mutable_actor()->set_type(static_cast<v1::Actor::Type>(99));
       })},
      {.name = "MergeAgentWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.mutable_actor()->clear_id(); })},
      {.name = "MergeActorIdWithSpace",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send =
           merge([](v1::MergeRequest& r, const State&) { r.mutable_actor()->set_id("agent 7"); })},
      {.name = "MergeTakeFromSourceEmail",
       .code = kInvalid,
       .message_names = {"take_from_source[0]", "email"},
       .send = merge([](v1::MergeRequest& r, const State&) { r.add_take_from_source("email"); })},
      {.name = "MergeTakeFromSourceAttributes",
       .code = kInvalid,
       .message_names = {"take_from_source[1]"},
       .send = merge([](v1::MergeRequest& r, const State&) {
         r.add_take_from_source("display_name");
         r.add_take_from_source("attributes");
       })},
      {.name = "MergeTakeFromSourceAttributesDot",
       .code = kInvalid,
       .message_names = {"take_from_source[0]"},
       .send =
           merge([](v1::MergeRequest& r, const State&) { r.add_take_from_source("attributes."); })},
      {.name = "MergeTakeFromSourceAttributeKeyOver128Bytes",
       .code = kInvalid,
       .message_names = {"take_from_source[0]"},
       .send = merge([](v1::MergeRequest& r, const State&) {
         r.add_take_from_source(absl::StrCat("attributes.", std::string(129, 'k')));
       })},
      {.name = "MergeTakeFromSource65Paths",
       .code = kInvalid,
       .message_names = {"take_from_source"},
       .send = merge([](v1::MergeRequest& r, const State&) {
         for (int i = 0; i < 65; ++i) r.add_take_from_source(absl::StrCat("attributes.k", i));
       })},
      // Customers that are not there.
      {.name = "MergeUnknownSource",
       .code = kNotFound,
       .message_names = {"source_customer_id", kUnknownCustomer},
       .send = merge(
           [](v1::MergeRequest& r, const State&) { r.set_source_customer_id(kUnknownCustomer); })},
      {.name = "MergeUnknownTarget",
       .code = kNotFound,
       .message_names = {"target_customer_id", kUnknownCustomer},
       .send = merge(
           [](v1::MergeRequest& r, const State&) { r.set_target_customer_id(kUnknownCustomer); })},
      {.name = "MergeTargetOfAnotherTenant",
       .code = kNotFound,
       .message_names = {"target_customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::MergeRequest r = MergeOf(s);
             r.set_target_customer_id(CrmCustomer(api, absl::StrCat(s.tenant, "x"), kThirdCrm));
             return api.Merge(r);
           },
       .prepare =
           [](Api& api, const State& s) {
             CreateCrmCustomer(api, absl::StrCat(s.tenant, "x"), kThirdCrm);
           }},
      {.name = "MergeSourceOfAnotherTenant",
       .code = kNotFound,
       .message_names = {"source_customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::MergeRequest r = MergeOf(s);
             r.set_source_customer_id(CrmCustomer(api, absl::StrCat(s.tenant, "x"), kThirdCrm));
             return api.Merge(r);
           },
       .prepare =
           [](Api& api, const State& s) {
             CreateCrmCustomer(api, absl::StrCat(s.tenant, "x"), kThirdCrm);
           }},
      // State conflicts, set up by real merges: other was merged into customer.
      {.name = "MergeSourceAlreadyMergedElsewhere",
       .code = kPrecondition,
       .message_names = {"source_customer_id", "$other", "$customer"},
       .send =
           [](Api& api, const State& s) {
             return api.Merge(MergeOf(s.tenant, s.other, CrmCustomer(api, s.tenant, kThirdCrm)));
           },
       .prepare =
           [](Api& api, const State& s) {
             CreateCrmCustomer(api, s.tenant, kThirdCrm);
             MergeForSetup(api, s.tenant, s.other, s.customer);
           }},
      {.name = "MergeIntoMergedTarget",
       .code = kPrecondition,
       .message_names = {"target_customer_id", "$other", "merge into $customer"},
       .send =
           [](Api& api, const State& s) {
             return api.Merge(MergeOf(s.tenant, CrmCustomer(api, s.tenant, kThirdCrm), s.other));
           },
       .prepare =
           [](Api& api, const State& s) {
             CreateCrmCustomer(api, s.tenant, kThirdCrm);
             MergeForSetup(api, s.tenant, s.other, s.customer);
           }},
      // The target went into the source itself: merging back would make a cycle.
      {.name = "MergeIntoTargetMergedIntoTheSource",
       .code = kPrecondition,
       .message_names = {"target_customer_id", "merge into $customer"},
       .send = [](Api& api, const State& s) { return api.Merge(MergeOf(s)); },
       .prepare = [](Api& api,
                     const State& s) { MergeForSetup(api, s.tenant, s.other, s.customer); }},
      // Refused after both customers were locked: the locks and the record must go again.
      {.name = "MergeOverIdentifiersPerTypeLimit",
       .code = grpc::StatusCode::RESOURCE_EXHAUSTED,
       .message_names = {"identifiers"},
       .send = [](Api& api, const State& s) { return api.Merge(MergeOf(s)); },
       .prepare =
           [](Api& api, const State& s) {
             for (int i = 0; i < 501; ++i) {
               v1::LinkRequest r = LinkOf(s, v1::IDENTIFIER_TYPE_CRM_ID, absl::StrCat("crm-", i));
               if (i % 2 == 1) r.set_customer_id(s.other);
               grpc::Status st = api.Link(r);
               ASSERT_TRUE(st.ok()) << i << ": " << Describe(st);
             }
           }},
  };
}

std::vector<BadInputCase> UnmergeCases() {
  // Otherwise valid unmerges of a real merge of s.customer into s.other, made by `prepare`.
  auto unmerge = [](std::function<void(v1::UnmergeRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::UnmergeRequest r = UnmergeOf(s, NewestMergeId(api, s, s.other));
      spoil(r, s);
      return api.Unmerge(r);
    };
  };
  auto merged = [](Api& api, const State& s) { MergeForSetup(api, s.tenant, s.customer, s.other); };
  return {
      {.name = "UnmergeTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) { r.clear_tenant(); }),
       .prepare = merged},
      {.name = "UnmergeMergeIdEmpty",
       .code = kInvalid,
       .message_names = {"merge_id"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) { r.clear_merge_id(); }),
       .prepare = merged},
      {.name = "UnmergeMergeIdBraces",
       .code = kInvalid,
       .message_names = {"merge_id"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) {
         r.set_merge_id(absl::StrCat("{", r.merge_id(), "}"));
       }),
       .prepare = merged},
      {.name = "UnmergeMergeIdWithSpace",
       .code = kInvalid,
       .message_names = {"merge_id"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) {
         r.set_merge_id(absl::StrCat(r.merge_id(), " "));
       }),
       .prepare = merged},
      {.name = "UnmergeUnknownMergeId",
       .code = kNotFound,
       .message_names = {"merge_id", "mrg_nobody"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) { r.set_merge_id("mrg_nobody"); }),
       .prepare = merged},
      {.name = "UnmergeMergeIdOfAnotherTenant",
       .code = kNotFound,
       .message_names = {"merge_id"},
       .send = unmerge([](v1::UnmergeRequest& r, const State& s) {
         r.set_tenant(absl::StrCat(s.tenant, "x"));
       }),
       .prepare = merged},
      {.name = "UnmergeReasonMissing",
       .code = kInvalid,
       .message_names = {"reason"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) { r.clear_reason(); }),
       .prepare = merged},
      {.name = "UnmergeReasonOver1KiB",
       .code = kInvalid,
       .message_names = {"reason"},
       .send = unmerge(
           [](v1::UnmergeRequest& r, const State&) { r.set_reason(std::string(1025, 'r')); }),
       .prepare = merged},
      {.name = "UnmergeActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) { r.clear_actor(); }),
       .prepare = merged},
      {.name = "UnmergeBotWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = unmerge([](v1::UnmergeRequest& r, const State&) {
         *r.mutable_actor() = ActorOf(v1::Actor::TYPE_BOT, "");
       }),
       .prepare = merged},
      {.name = "UnmergeTwice",
       .code = kPrecondition,
       .message_names = {"already unmerged"},
       .send = unmerge([](v1::UnmergeRequest&, const State&) {}),
       .prepare =
           [](Api& api, const State& s) {
             std::string id = MergeForSetup(api, s.tenant, s.customer, s.other);
             v1::UnmergeResponse unmerged;
             grpc::Status st = api.Unmerge(UnmergeOf(s, id), &unmerged);
             ASSERT_TRUE(st.ok()) << Describe(st);
             ASSERT_EQ(unmerged.merge().state(), v1::MergeRecord::STATE_UNMERGED);
           }},
      // customer -> other, then other -> third: the first cannot be undone before the second.
      {.name = "UnmergeTargetSinceMergedElsewhere",
       .code = kPrecondition,
       .message_names = {"$other", "unmerge that one first"},
       .send =
           [](Api& api, const State& s) {
             v1::GetMergeHistoryResponse history;
             grpc::Status st = api.GetMergeHistory(HistoryOf(s, s.customer), &history);
             EXPECT_TRUE(st.ok()) << Describe(st);
             EXPECT_EQ(history.merges_size(), 1);
             return api.Unmerge(UnmergeOf(s, history.merges(0).merge_id()));
           },
       .prepare =
           [](Api& api, const State& s) {
             CreateCrmCustomer(api, s.tenant, kThirdCrm);
             MergeForSetup(api, s.tenant, s.customer, s.other);
             MergeForSetup(api, s.tenant, s.other, CrmCustomer(api, s.tenant, kThirdCrm));
           }},
  };
}

std::vector<BadInputCase> MergeReadCases() {
  return {
      {.name = "GetMergeHistoryTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::GetMergeHistoryRequest r = HistoryOf(s, s.customer);
             r.clear_tenant();
             return api.GetMergeHistory(r);
           }},
      {.name = "GetMergeHistoryCustomerIdEmpty",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send = [](Api& api, const State& s) { return api.GetMergeHistory(HistoryOf(s, "")); }},
      {.name = "GetMergeHistoryCustomerIdOpenBrace",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send =
           [](Api& api, const State& s) {
             return api.GetMergeHistory(HistoryOf(s, absl::StrCat(s.customer, "{")));
           }},
      {.name = "GetMergeHistoryUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send = [](Api& api,
                  const State& s) { return api.GetMergeHistory(HistoryOf(s, kUnknownCustomer)); }},
      // An erased customer answers as on every other read, not with an empty history.
      {.name = "GetMergeHistoryErasedCustomer",
       .code = kNotFound,
       .message_names = {"$customer", "was erased"},
       .send = [](Api& api,
                  const State& s) { return api.GetMergeHistory(HistoryOf(s, s.customer)); },
       .prepare = [](Api& api, const State& s) { EraseForSetup(api, s, s.customer); }},
      {.name = "GetMergeHistoryErasedAfterAMerge",
       .code = kNotFound,
       .message_names = {"$other", "was erased"},
       .send = [](Api& api, const State& s) { return api.GetMergeHistory(HistoryOf(s, s.other)); },
       .prepare =
           [](Api& api, const State& s) {
             ASSERT_NO_FATAL_FAILURE(MergeForSetup(api, s.tenant, s.customer, s.other));
             EraseForSetup(api, s, s.other);
           }},
      {.name = "SuggestMergesTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             r.clear_tenant();
             return api.SuggestMerges(r);
           }},
      {.name = "SuggestMergesMaxNegative",
       .code = kInvalid,
       .message_names = {"max_suggestions"},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             r.set_max_suggestions(-1);
             return api.SuggestMerges(r);
           }},
      {.name = "SuggestMerges51",
       .code = kInvalid,
       .message_names = {"max_suggestions"},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             r.set_max_suggestions(51);
             return api.SuggestMerges(r);
           }},
      {.name = "SuggestMergesCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             r.clear_customer();
             return api.SuggestMerges(r);
           }},
      {.name = "SuggestMergesPhoneNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"customer.identifier.value", "default country"},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, "(415) 555-0100");
             return api.SuggestMerges(r);
           }},
      {.name = "SuggestMergesUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::SuggestMergesRequest r = SuggestOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             return api.SuggestMerges(r);
           }},
  };
}

}  // namespace

std::vector<BadInputCase> MergeCases() {
  return Concat({MergeRequestCases(), UnmergeCases(), MergeReadCases()});
}

}  // namespace onestory::testing::bad_input
