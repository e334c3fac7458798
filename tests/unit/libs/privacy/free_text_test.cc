#include "libs/privacy/free_text.h"

#include <dirent.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "onestory/v1/alert.pb.h"
#include "onestory/v1/case.pb.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/context.pb.h"
#include "onestory/v1/conversation.pb.h"
#include "onestory/v1/identity.pb.h"
#include "onestory/v1/privacy.pb.h"
#include "onestory/v1/timeline.pb.h"

namespace onestory::privacy {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

// Every string field of the API that is not free text, by why. A new string field must be marked
// [(free_text) = true] or added here: FreeTextIsDecidedForEveryStringField fails until it is.
// (Fields named "tenant" are tenant names everywhere and need no entry.)
const absl::flat_hash_set<std::string> kIdentifiersAndTokens = {
    "Identifier.value",
    "CustomerRef.customer_id",
    "Actor.id",
    "Event.event_id",
    "Event.conversation_id",
    "Event.case_id",
    "Event.customer_id",
    "Event.cursor",
    "AuditEntry.request_id",  // 1-128 of A-Z a-z 0-9 . _ : - (services/common/request_id.h)
    "Fact.name",
    "Fact.case_id",
    "Fact.conversation_id",
    "Alert.alert_id",
    "Alert.customer_id",
    "Alert.case_id",
    "Alert.cursor",
    "WatchAlertsRequest.after_cursor",
    "ListAlertsRequest.page_token",
    "ListAlertsResponse.next_page_token",
    "AckAlertRequest.alert_id",
    "Case.case_id",
    "Case.customer_id",
    "Case.stage",
    "OpenCaseRequest.case_id",
    "OpenCaseRequest.stage",
    "OpenCaseRequest.conversation_id",
    "UpdateCaseRequest.case_id",
    "UpdateCaseRequest.stage",
    "UpdateCaseRequest.request_id",
    "ResolveCaseRequest.case_id",
    "GetCaseRequest.case_id",
    "SetJourneyRequest.stages",
    "Journey.stages",
    "StageStats.stage",
    "Conversation.conversation_id",
    "Conversation.customer_id",
    "Conversation.case_id",
    "RepeatContact.case_id",
    "RepeatContact.conversation_id",
    "StartConversationRequest.conversation_id",
    "StartConversationRequest.case_id",
    "StartConversationResponse.customer_id",
    "HandoffRequest.conversation_id",
    "HandoffRequest.request_id",
    "HandoffResponse.customer_id",
    "EndConversationRequest.conversation_id",
    "EndConversationResponse.customer_id",
    "RecordFactsRequest.request_id",
    "RecordFactsResponse.customer_id",
    "LinkEvidence.merge_id",
    "LinkEvidence.merged_from",
    "Profile.customer_id",
    "Profile.language",
    "ResolveResponse.customer_id",
    "LinkRequest.customer_id",
    "UnlinkRequest.customer_id",
    "UpdateProfileRequest.customer_id",
    "MergeRecord.merge_id",
    "MergeRecord.source_customer_id",
    "MergeRecord.target_customer_id",
    "MergeRecord.take_from_source",
    "MergeRequest.source_customer_id",
    "MergeRequest.target_customer_id",
    "MergeRequest.take_from_source",
    "UnmergeRequest.merge_id",
    "GetMergeHistoryRequest.customer_id",
    "MergeSuggestion.customer_id",
    "OpenConversation.conversation_id",
    "OpenConversation.case_id",
    "EraseCustomerResponse.customer_id",
    "EraseCustomerResponse.merged_customer_ids",
    "RedactEventRequest.event_id",
    "ListAuditEntriesRequest.customer_id",
    "ListAuditEntriesRequest.page_token",
    "ListAuditEntriesResponse.next_page_token",
    "AuditEntry.customer_id",
    "AppendResponse.customer_id",
    "ListRequest.page_token",
    "ListResponse.next_page_token",
    "WatchRequest.after_cursor",
};
// Output built by the server from stored (already masked) text, or about calls, not customers.
const absl::flat_hash_set<std::string> kServerOutput = {
    "Alert.message",     "MatchReason.code",  "MatchReason.detail",  "ExportCustomerChunk.json",
    "AuditEntry.key_id", "AuditEntry.method", "AuditEntry.named_by", "AuditEntry.code",
    "AuditEntry.detail", "AuditEntry.agent",  // the agent token's subject, an id
};

constexpr char kCard[] = "4111 1111 1111 1111";
constexpr char kMaskedCard[] = "**** **** **** 1111";

Redactor WithSsn() {
  absl::StatusOr<Redactor> r = Redactor::Create({{"ssn", R"(\b\d{3}-\d{2}-\d{4}\b)"}});
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// The API's files, as protoc compiled them into this binary. Names every .proto in
// proto/onestory/v1, so a new file is checked too (or fails here until it is linked).
std::vector<const FileDescriptor*> ApiFiles() {
  // Linked by naming one message of each file.
  const FileDescriptor* linked[] = {
      v1::Event::descriptor()->file(),        v1::Alert::descriptor()->file(),
      v1::Case::descriptor()->file(),         v1::GetContextRequest::descriptor()->file(),
      v1::Conversation::descriptor()->file(), v1::Profile::descriptor()->file(),
      v1::AuditEntry::descriptor()->file(),   v1::AppendRequest::descriptor()->file()};
  (void)linked;
  std::vector<const FileDescriptor*> files;
  std::string dir = absl::StrCat(ONESTORY_SOURCE_DIR, "/proto/onestory/v1");
  DIR* d = opendir(dir.c_str());
  EXPECT_NE(d, nullptr) << dir;
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!absl::EndsWith(name, ".proto") || name == "options.proto") continue;
    const FileDescriptor* f =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName("onestory/v1/" + name);
    EXPECT_NE(f, nullptr) << name << " is not linked into this test: name one of its messages";
    if (f != nullptr) files.push_back(f);
  }
  closedir(d);
  return files;
}

void AllMessages(const Descriptor* d, std::vector<const Descriptor*>* out) {
  if (d->options().map_entry()) return;
  out->push_back(d);
  for (int i = 0; i < d->nested_type_count(); ++i) AllMessages(d->nested_type(i), out);
}

TEST(FreeTextTest, FreeTextIsDecidedForEveryStringField) {
  std::vector<const FileDescriptor*> files = ApiFiles();
  EXPECT_GE(files.size(), 8u);
  absl::flat_hash_set<std::string> seen;
  int marked = 0;
  for (const FileDescriptor* file : files) {
    std::vector<const Descriptor*> messages;
    for (int i = 0; i < file->message_type_count(); ++i) {
      AllMessages(file->message_type(i), &messages);
    }
    for (const Descriptor* m : messages) {
      for (int i = 0; i < m->field_count(); ++i) {
        const FieldDescriptor* f = m->field(i);
        std::string name = absl::StrCat(m->name(), ".", f->name());
        bool text =
            f->type() == FieldDescriptor::TYPE_STRING ||
            (f->is_map() && f->message_type()->map_value()->type() == FieldDescriptor::TYPE_STRING);
        if (IsFreeText(f)) {
          ++marked;
          EXPECT_TRUE(text) << name << " is marked free_text but holds no string";
          EXPECT_FALSE(kIdentifiersAndTokens.contains(name) || kServerOutput.contains(name))
              << name << " is marked free_text and listed as not free text";
          continue;
        }
        if (!text) continue;
        seen.insert(name);
        EXPECT_TRUE(f->name() == "tenant" || kIdentifiersAndTokens.contains(name) ||
                    kServerOutput.contains(name))
            << name << " (" << file->name()
            << ") is a string field neither marked [(free_text) = true] nor listed as not free "
               "text in this test: decide which it is";
      }
    }
  }
  EXPECT_GE(marked, 30);
  for (const auto* list : {&kIdentifiersAndTokens, &kServerOutput}) {
    for (const std::string& name : *list) {
      EXPECT_TRUE(seen.contains(name)) << name << " is listed here but is no unmarked string field";
    }
  }
}

TEST(FreeTextTest, MasksEventTextAndAttributeValuesAndNothingElse) {
  v1::AppendRequest req;
  req.set_tenant("acme");
  req.mutable_customer()->set_customer_id("c_1");
  v1::Event* e = req.add_events();
  e->set_event_id("4111111111111111");  // an id, however card-like, is kept
  e->set_conversation_id("conv-1");
  e->mutable_actor()->set_id("agent 4111 1111 1111 1111");
  e->set_summary(absl::StrCat("card ", kCard));
  e->set_body("ssn 123-45-6789, card 5500-0055-5555-5559");
  (*e->mutable_attributes())["card"] = kCard;
  (*e->mutable_attributes())[kCard] = "plain";  // keys are names, kept
  req.add_events()->set_summary("nothing to mask");

  EXPECT_EQ(MaskFreeText(WithSsn(), &req), 4);
  const v1::Event& m = req.events(0);
  EXPECT_EQ(m.summary(), absl::StrCat("card ", kMaskedCard));
  EXPECT_EQ(m.body(), "ssn [ssn], card ****-****-****-5559");
  EXPECT_EQ(m.attributes().at("card"), kMaskedCard);
  EXPECT_EQ(m.attributes().at(kCard), "plain");
  EXPECT_EQ(m.event_id(), "4111111111111111");
  EXPECT_EQ(m.actor().id(), "agent 4111 1111 1111 1111");
  EXPECT_EQ(req.events(1).summary(), "nothing to mask");
  EXPECT_EQ(req.tenant(), "acme");
}

TEST(FreeTextTest, MasksEveryWriteRequestsText) {
  Redactor ssn = WithSsn();
  v1::HandoffRequest handoff;
  handoff.set_reason(kCard);
  handoff.set_summary("ssn 123-45-6789");
  handoff.set_transcript(kCard);
  handoff.set_request_id("r-1");
  v1::Fact* fact = handoff.add_collected();
  fact->set_name("card");
  fact->set_value(kCard);
  handoff.add_collected()->set_value("123-45-6789");
  EXPECT_EQ(MaskFreeText(ssn, &handoff), 5);
  EXPECT_EQ(handoff.reason(), kMaskedCard);
  EXPECT_EQ(handoff.summary(), "ssn [ssn]");
  EXPECT_EQ(handoff.transcript(), kMaskedCard);
  EXPECT_EQ(handoff.collected(0).value(), kMaskedCard);
  EXPECT_EQ(handoff.collected(0).name(), "card");
  EXPECT_EQ(handoff.collected(1).value(), "[ssn]");

  v1::UpdateCaseRequest update;
  update.set_note(kCard);
  update.set_promise(kCard);
  update.set_reassign_reason(kCard);
  update.set_case_id("case-1");
  EXPECT_EQ(MaskFreeText(ssn, &update), 3);
  EXPECT_EQ(update.note(), kMaskedCard);
  EXPECT_EQ(update.promise(), kMaskedCard);
  EXPECT_EQ(update.reassign_reason(), kMaskedCard);

  v1::UpdateProfileRequest profile;
  profile.set_customer_id("c_1");
  profile.mutable_profile()->set_display_name("Jo 123-45-6789");
  profile.mutable_profile()->set_tier(kCard);
  profile.mutable_profile()->set_language("en");
  (*profile.mutable_profile()->mutable_attributes())["note"] = kCard;
  EXPECT_EQ(MaskFreeText(ssn, &profile), 3);
  EXPECT_EQ(profile.profile().display_name(), "Jo [ssn]");
  EXPECT_EQ(profile.profile().tier(), kMaskedCard);
  EXPECT_EQ(profile.profile().attributes().at("note"), kMaskedCard);

  v1::EndConversationRequest end;
  end.set_outcome(kCard);
  end.set_wrap_up_code("4111111111111111");
  end.set_summary("123-45-6789");
  EXPECT_EQ(MaskFreeText(ssn, &end), 3);
  EXPECT_EQ(end.outcome(), kMaskedCard);
  EXPECT_EQ(end.wrap_up_code(), "************1111");
  EXPECT_EQ(end.summary(), "[ssn]");

  v1::MergeRequest merge;
  merge.set_reason(kCard);
  EXPECT_EQ(MaskFreeText(ssn, &merge), 1);
  EXPECT_EQ(merge.reason(), kMaskedCard);
}

TEST(FreeTextTest, LeavesAMessageWithoutCardsOrPatternsByteForByte) {
  v1::HandoffRequest req;
  req.set_reason("customer asked for a human");
  req.set_transcript("order ORD-2024-000123495, phone +1 415 555 0100");
  v1::Fact* f = req.add_collected();
  f->set_name("order");
  f->set_value("1234");
  std::string before = req.SerializeAsString();
  EXPECT_EQ(MaskFreeText(WithSsn(), &req), 0);
  EXPECT_EQ(req.SerializeAsString(), before);
}

TEST(FreeTextTest, StorageIsCardsOnlyWithoutARedactor) {
  EXPECT_TRUE(OrCardsOnly(nullptr).empty());
  EXPECT_EQ(OrCardsOnly(nullptr).Mask(kCard), kMaskedCard);
  Redactor ssn = WithSsn();
  EXPECT_EQ(&OrCardsOnly(&ssn), &ssn);
  v1::ResolveCaseRequest req;
  req.set_resolution(absl::StrCat("ssn 123-45-6789 card ", kCard));
  EXPECT_EQ(MaskedForStorage(&ssn, req).resolution(), absl::StrCat("ssn [ssn] card ", kMaskedCard));
  EXPECT_EQ(MaskedForStorage(nullptr, req).resolution(),
            absl::StrCat("ssn 123-45-6789 card ", kMaskedCard));
  // The original is left alone.
  EXPECT_EQ(req.resolution(), absl::StrCat("ssn 123-45-6789 card ", kCard));
}

}  // namespace
}  // namespace onestory::privacy
