#include "libs/merge/profile_merge.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/profile_codec.h"

namespace onestory::merge {

ProfileMerge MergeProfiles(const std::map<std::string, std::string>& target,
                           const std::map<std::string, std::string>& source,
                           const std::vector<std::string>& take) {
  ProfileMerge out;
  std::set<std::string> take_fields;
  for (const std::string& p : take) {
    if (absl::StartsWith(p, "attributes.")) {
      take_fields.insert(absl::StrCat(identity::kAttrPrefix, p.substr(strlen("attributes."))));
    } else {
      take_fields.insert(p);
    }
  }
  auto set = [&](const std::string& field, const std::string& value) {
    auto t = target.find(field);
    bool had = t != target.end();
    if (had && t->second == value) return;
    out.sets.emplace_back(field, value);
    absl::StrAppend(&out.priors, absl::CEscape(field), "\t", had ? "1" : "0", "\t",
                    had ? absl::CEscape(t->second) : "", "\t", absl::CEscape(value), "\n");
  };
  // Attributes stay within the profile limit: the source's fill free places only (the ones
  // left out stay with the source, and come back with an Unmerge).
  int attributes = 0;
  for (const auto& [field, value] : target) {
    if (absl::StartsWith(field, identity::kAttrPrefix)) ++attributes;
  }
  for (const auto& [field, value] : source) {
    bool attribute = absl::StartsWith(field, identity::kAttrPrefix);
    bool plain = field == "display_name" || field == "language" || field == "tier" || attribute;
    if (plain) {
      bool present = target.contains(field);
      if (attribute && !present && attributes >= identity::kMaxProfileAttributes) continue;
      if (!present || take_fields.contains(field)) {
        set(field, value);
        if (attribute && !present) ++attributes;
      }
    } else if (absl::StartsWith(field, identity::kConsentPrefix)) {
      // "<state>:<updated ms>": the later decision wins.
      auto t = target.find(field);
      auto ms = [](const std::string& v) {
        int64_t m = 0;
        size_t colon = v.find(':');
        if (colon != std::string::npos) absl::SimpleAtoi(v.substr(colon + 1), &m);
        return m;
      };
      if (t == target.end() || ms(value) > ms(t->second)) set(field, value);
    } else if (absl::StartsWith(field, identity::kActivityPrefix)) {
      auto t = target.find(field);
      int64_t a = 0, b = 0;
      absl::SimpleAtoi(value, &a);
      if (t != target.end()) absl::SimpleAtoi(t->second, &b);
      if (t == target.end() || a > b) out.sets.emplace_back(field, value);  // derived: no prior
    }
  }
  return out;
}

std::vector<Prior> ParsePriors(absl::string_view blob) {
  std::vector<Prior> out;
  for (absl::string_view line : absl::StrSplit(blob, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, '\t');
    if (parts.size() != 4) continue;
    Prior p;
    if (!absl::CUnescape(parts[0], &p.field) || !absl::CUnescape(parts[2], &p.old_value) ||
        !absl::CUnescape(parts[3], &p.new_value)) {
      continue;
    }
    p.had = parts[1] == "1";
    out.push_back(std::move(p));
  }
  return out;
}

std::map<std::string, std::string> MergeConversations(
    std::map<std::string, std::string> convs, const std::map<std::string, std::string>& source) {
  for (const auto& [id, sv] : source) {
    auto it = convs.find(id);
    if (it == convs.end()) {
      convs[id] = sv;
      continue;
    }
    std::vector<absl::string_view> a = absl::StrSplit(it->second, '|');
    std::vector<absl::string_view> c = absl::StrSplit(sv, '|');
    int64_t af = 0, al = 0, an = 0, cf = 0, cl = 0, cn = 0;
    if (a.size() != 4 || c.size() != 4 || !absl::SimpleAtoi(a[0], &af) ||
        !absl::SimpleAtoi(a[1], &al) || !absl::SimpleAtoi(a[2], &an) ||
        !absl::SimpleAtoi(c[0], &cf) || !absl::SimpleAtoi(c[1], &cl) ||
        !absl::SimpleAtoi(c[2], &cn)) {
      continue;
    }
    it->second = absl::StrCat(std::min(af, cf), "|", std::max(al, cl), "|", an + cn, "|",
                              cl > al ? c[3] : a[3]);
  }
  return convs;
}

std::map<std::string, std::string> HashFromReply(const redis::Reply& r) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    out[r.elements[i].str] = r.elements[i + 1].str;
  return out;
}

}  // namespace onestory::merge
