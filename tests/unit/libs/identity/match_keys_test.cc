#include "libs/identity/match_keys.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// "code key detail weight", so a failing expectation shows the whole key.
std::string Str(const MatchKey& k) {
  return absl::StrCat(k.code, " ", k.key, " ", k.detail, " ", k.weight);
}
std::vector<std::string> Strs(const std::vector<MatchKey>& keys) {
  std::vector<std::string> out;
  for (const MatchKey& k : keys) out.push_back(Str(k));
  return out;
}

v1::Profile WithAttributes(std::vector<std::pair<std::string, std::string>> attributes,
                           absl::string_view display_name = "") {
  v1::Profile p;
  p.set_display_name(std::string(display_name));
  for (auto& [k, v] : attributes) (*p.mutable_attributes())[k] = v;
  return p;
}

void AddIdentifier(v1::Profile& p, v1::IdentifierType type, absl::string_view value) {
  v1::Identifier* id = p.add_identifiers()->mutable_identifier();
  id->set_type(type);
  id->set_value(std::string(value));
}

// ---------------------------------------------------------------------------------------------
// ProfileMatchKeys

TEST(ProfileMatchKeysTest, NormalizesEachIdentifierAttributeAsItsType) {
  v1::Profile p = WithAttributes({{"email", " Ann@Example.COM"},
                                  {"phone", "+1 (415) 555-0100"},
                                  {"loyalty_id", "ab-12 34"},
                                  {"app_user_id", " u-77 "},
                                  {"crm_id", "CRM-9"},
                                  {"city", "Lisbon"}});
  EXPECT_THAT(Strs(ProfileMatchKeys(p)),
              ElementsAre("same_loyalty_id loyalty:AB1234 AB1234 0.9",
                          "same_app_user_id app:u-77 u-77 0.9", "same_crm_id crm:CRM-9 CRM-9 0.9",
                          "same_email email:ann@example.com ann@example.com 0.8",
                          "same_phone phone:14155550100 14155550100 0.7"));
  std::vector<MatchKey> keys = ProfileMatchKeys(p);
  EXPECT_EQ(keys[0].type, v1::IDENTIFIER_TYPE_LOYALTY_ID);
  EXPECT_EQ(keys[4].type, v1::IDENTIFIER_TYPE_PHONE);
}

TEST(ProfileMatchKeysTest, SkipsValuesThatAreNotOfTheirType) {
  v1::Profile p = WithAttributes(
      {{"email", "not an email"}, {"phone", "n/a"}, {"loyalty_id", " - "}, {"crm_id", ""}});
  EXPECT_THAT(ProfileMatchKeys(p), IsEmpty());
}

TEST(ProfileMatchKeysTest, AttributeNamesAreExact) {
  v1::Profile p = WithAttributes({{"Email", "ann@example.com"}, {"e-mail", "ann@example.com"}});
  EXPECT_THAT(ProfileMatchKeys(p), IsEmpty());
}

TEST(ProfileMatchKeysTest, NameAndPostalCodeWhenBothPresent) {
  v1::Profile p = WithAttributes({{"postal_code", "sw1a 1aa"}}, "  Ann   LEE. ");
  EXPECT_THAT(Strs(ProfileMatchKeys(p)),
              ElementsAre("same_name_and_postal_code name:ann lee|SW1A1AA ann lee, SW1A1AA 0.6"));
  EXPECT_EQ(ProfileMatchKeys(p)[0].type, v1::IDENTIFIER_TYPE_UNSPECIFIED);

  // Typed another way, the same key.
  v1::Profile q = WithAttributes({{"postal_code", "SW1A-1AA"}}, "ann lee");
  EXPECT_EQ(ProfileMatchKeys(q)[0].key, ProfileMatchKeys(p)[0].key);

  EXPECT_THAT(ProfileMatchKeys(WithAttributes({{"postal_code", "SW1A 1AA"}})), IsEmpty());
  EXPECT_THAT(ProfileMatchKeys(WithAttributes({}, "Ann Lee")), IsEmpty());
  EXPECT_THAT(ProfileMatchKeys(WithAttributes({{"postal_code", " - "}}, "Ann Lee")), IsEmpty());
  EXPECT_THAT(ProfileMatchKeys(WithAttributes({{"postal_code", "94107"}}, " .,. ")), IsEmpty());
  EXPECT_THAT(ProfileMatchKeys(WithAttributes({{"postal_code", std::string(33, '9')}}, "Ann")),
              IsEmpty());
}

TEST(ProfileMatchKeysTest, IdentifierAttributesComeBeforeTheNameKey) {
  v1::Profile p =
      WithAttributes({{"postal_code", "94107"}, {"email", "ann@example.com"}}, "Ann Lee");
  std::vector<MatchKey> keys = ProfileMatchKeys(p);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].code, "same_email");
  EXPECT_EQ(keys[1].code, "same_name_and_postal_code");
}

// ---------------------------------------------------------------------------------------------
// FoldName, FoldPostalCode

TEST(FoldNameTest, LowerCasesDropsPunctuationAndCollapsesWhitespace) {
  EXPECT_EQ(FoldName("Ann Lee"), "ann lee");
  EXPECT_EQ(FoldName("  ANN \t\n LEE  "), "ann lee");
  EXPECT_EQ(FoldName("Lee, Ann"), "lee ann");
  EXPECT_EQ(FoldName("J. R. R. Tolkien"), "j r r tolkien");
  EXPECT_EQ(FoldName("Dr.Who"), "drwho");
  EXPECT_EQ(FoldName(" . , "), "");
  EXPECT_EQ(FoldName(""), "");
  // Bytes outside ASCII are kept as they are.
  EXPECT_EQ(FoldName("José  ÁLVAREZ"), "josé Álvarez");
}

TEST(FoldPostalCodeTest, UpperCasesAndDropsSpacesAndDashes) {
  EXPECT_EQ(FoldPostalCode("sw1a 1aa"), "SW1A1AA");
  EXPECT_EQ(FoldPostalCode(" 94107-1234 "), "941071234");
  EXPECT_EQ(FoldPostalCode("k1a\t0b1"), "K1A0B1");
  EXPECT_EQ(FoldPostalCode(" - "), "");
}

// ---------------------------------------------------------------------------------------------
// IdentifierMatchKeys

TEST(IdentifierMatchKeysTest, OnlyTheFiveMatchTypesInProfileOrder) {
  v1::Profile p;
  AddIdentifier(p, v1::IDENTIFIER_TYPE_PHONE, "14155550100");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_APP_USER_ID, "u-77");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-1");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_CHAT_SESSION, "cookie-1");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_LOYALTY_ID, "AB1234");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "x:ann");
  AddIdentifier(p, v1::IDENTIFIER_TYPE_CRM_ID, "CRM-9");
  (*p.mutable_attributes())["email"] = "other@example.com";  // not an identifier
  p.set_display_name("Ann");
  EXPECT_THAT(
      Strs(IdentifierMatchKeys(p)),
      ElementsAre("same_phone phone:14155550100 14155550100 0.7",
                  "same_email email:ann@example.com ann@example.com 0.8",
                  "same_app_user_id app:u-77 u-77 0.9", "same_loyalty_id loyalty:AB1234 AB1234 0.9",
                  "same_crm_id crm:CRM-9 CRM-9 0.9"));
}

TEST(IdentifierMatchKeysTest, AnAttributeAndAnIdentifierOfOneValueShareTheKey) {
  v1::Profile typed =
      WithAttributes({{"email", "  ANN@example.com"}, {"phone", "0044 20 7946 0958"}});
  v1::Profile linked;
  AddIdentifier(linked, v1::IDENTIFIER_TYPE_PHONE, "442079460958");
  AddIdentifier(linked, v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  std::vector<MatchKey> a = ProfileMatchKeys(typed);
  std::vector<MatchKey> b = IdentifierMatchKeys(linked);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(a[0].key, b[1].key);  // email
  EXPECT_EQ(a[1].key, b[0].key);  // phone
  EXPECT_EQ(Str(a[0]), Str(b[1]));
}

// ---------------------------------------------------------------------------------------------
// MergeDenyList

MergeDenyList Parsed(absl::string_view spec) {
  absl::StatusOr<MergeDenyList> list = MergeDenyList::Parse(spec);
  EXPECT_TRUE(list.ok()) << list.status();
  return list.ok() ? *std::move(list) : MergeDenyList();
}

TEST(MergeDenyListTest, EmptySpecsDenyNothing) {
  for (absl::string_view spec : {"", " ", ",", " , ,"}) {
    MergeDenyList list = Parsed(spec);
    EXPECT_TRUE(list.empty()) << spec;
    EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "18005550100"));
  }
}

TEST(MergeDenyListTest, ExactValuesAreNormalizedAsTheirType) {
  MergeDenyList list =
      Parsed(" phone:+1 (800) 555-0100 , email:Front.Desk@Example.com,loyalty_id:ab-00 00");
  EXPECT_FALSE(list.empty());
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "18005550100"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "180055501000"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "1800555010"));
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_EMAIL, "front.desk@example.com"));
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_LOYALTY_ID, "AB0000"));
  // Same value, another type: not denied.
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_CRM_ID, "18005550100"));
}

TEST(MergeDenyListTest, TrailingStarIsAPrefixOfOneType) {
  MergeDenyList list = Parsed("device_id:Kiosk-*,phone:+44 20*,crm:*");
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-12"));
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_DEVICE_ID, "my-kiosk-12"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_CHAT_SESSION, "kiosk-12"));
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "442079460958"));
  EXPECT_FALSE(list.Denied(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  EXPECT_TRUE(list.Denied(v1::IDENTIFIER_TYPE_CRM_ID, "anything"));  // "crm:*": every CRM id
}

TEST(MergeDenyListTest, AcceptsProtoAndKeyTypeNames) {
  struct Case {
    v1::IdentifierType type;
    absl::string_view proto_name;
    absl::string_view key_name;
    absl::string_view value;  // normalized already
  };
  for (const Case& c : {
           Case{v1::IDENTIFIER_TYPE_PHONE, "phone", "phone", "4915112345678"},
           Case{v1::IDENTIFIER_TYPE_EMAIL, "email", "email", "a@b.co"},
           Case{v1::IDENTIFIER_TYPE_APP_USER_ID, "app_user_id", "app", "u1"},
           Case{v1::IDENTIFIER_TYPE_DEVICE_ID, "device_id", "device", "d1"},
           Case{v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat_session", "chat", "c1"},
           Case{v1::IDENTIFIER_TYPE_LOYALTY_ID, "loyalty_id", "loyalty", "L1"},
           Case{v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "social_handle", "social", "x:a"},
           Case{v1::IDENTIFIER_TYPE_CRM_ID, "crm_id", "crm", "k1"},
       }) {
    for (absl::string_view name : {c.proto_name, c.key_name}) {
      MergeDenyList list = Parsed(absl::StrCat(name, ":", c.value));
      EXPECT_TRUE(list.Denied(c.type, c.value)) << name;
    }
  }
}

TEST(MergeDenyListTest, DeniedKeyReadsMatchKeys) {
  MergeDenyList list = Parsed("phone:18005550100,loyalty_id:TEST*");
  EXPECT_TRUE(list.DeniedKey("phone:18005550100"));
  EXPECT_FALSE(list.DeniedKey("phone:14155550100"));
  EXPECT_TRUE(list.DeniedKey("loyalty:TEST-1"));
  EXPECT_FALSE(list.DeniedKey("loyalty_id:TEST-1"));  // keys use key names
  EXPECT_FALSE(list.DeniedKey("name:ann lee|94107"));
  EXPECT_FALSE(list.DeniedKey("18005550100"));
  EXPECT_FALSE(list.DeniedKey(""));
  // Every key a profile produces is checked the same way.
  v1::Profile p = WithAttributes({{"phone", "+1 800 555 0100"}, {"loyalty_id", "test-9"}});
  for (const MatchKey& k : ProfileMatchKeys(p)) EXPECT_TRUE(list.DeniedKey(k.key)) << k.key;
}

TEST(MergeDenyListTest, ParseErrorsNameTheEntry) {
  struct Case {
    absl::string_view spec;
    absl::string_view entry;
  };
  for (const Case& c : {
           Case{"phone:18005550100,kiosk-1", "kiosk-1"},
           Case{"fax:123", "fax:123"},
           Case{"PHONE:18005550100", "PHONE:18005550100"},
           Case{":x", ":x"},
           Case{"phone:", "phone:"},
           Case{"phone:call-me", "phone:call-me"},
           Case{"phone:123", "phone:123"},
           Case{"email:front desk", "email:front desk"},
           Case{"device_id:ki*osk", "device_id:ki*osk"},
           Case{"device_id:**", "device_id:**"},
           Case{"phone:1-800-CALL*", "phone:1-800-CALL*"},
       }) {
    absl::StatusOr<MergeDenyList> list = MergeDenyList::Parse(c.spec);
    ASSERT_FALSE(list.ok()) << c.spec;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_TRUE(absl::StrContains(list.status().message(),
                                  absl::StrCat("merge deny list entry \"", c.entry, "\": ")))
        << list.status();
  }
}

TEST(MergeDenyListTest, ParseErrorsSayWhy) {
  auto message = [](absl::string_view spec) {
    return std::string(MergeDenyList::Parse(spec).status().message());
  };
  EXPECT_THAT(message("kiosk-1"), ::testing::HasSubstr("expected <type>:<value>"));
  EXPECT_THAT(message("fax:1"), ::testing::HasSubstr("unknown type"));
  EXPECT_THAT(message("phone:12"), ::testing::HasSubstr("7 to 15 digits"));
  EXPECT_THAT(message("device:a*b"), ::testing::HasSubstr("'*' may only end the value"));
  EXPECT_THAT(message("phone:"), ::testing::HasSubstr("required"));
}

}  // namespace
}  // namespace onestory::identity
