// What a merge does to the target's profile and open conversations, and the record of it an
// Unmerge reads back: the target's values the merge overwrote ("priors", kept in the target's
// merge state hash as "field<TAB>had<TAB>old<TAB>new" lines, each part C-escaped).
//
//   ProfileMerge pm = MergeProfiles(target_profile, source_profile, take_from_source);
//   call.priors = pm.priors;                       // merge_swap stores it
//   std::vector<Prior> back = ParsePriors(stored);  // merge_remove restores them
//
// Internal to libs/merge. Pure functions.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/redis/reply.h"

namespace onestory::merge {

// The profile fields the target takes from the source, and the priors of those it overwrites.
struct ProfileMerge {
  std::vector<std::pair<std::string, std::string>> sets;
  std::string priors;
};

// Missing plain fields and attributes (within the attribute limit) and the paths named in
// `take` come from the source; the later consent decision wins; activity is the later one.
ProfileMerge MergeProfiles(const std::map<std::string, std::string>& target,
                           const std::map<std::string, std::string>& source,
                           const std::vector<std::string>& take);

// One target value a merge overwrote.
struct Prior {
  std::string field;
  bool had = false;
  std::string old_value;
  std::string new_value;
};

// The priors of MergeProfiles; malformed lines are skipped.
std::vector<Prior> ParsePriors(absl::string_view blob);

// Open conversations of both sides ("first|last|n|channel"): one open on both becomes one
// (earliest first, latest last, counts added, the channel of the latest).
std::map<std::string, std::string> MergeConversations(
    std::map<std::string, std::string> target, const std::map<std::string, std::string>& source);

// A hash as HGETALL answers it.
std::map<std::string, std::string> HashFromReply(const redis::Reply& r);

// Appends a counted list: the number of pairs, then each pair (the functions' `sets...`);
// a number is written in decimal.
template <typename Pairs>
void AppendCounted(std::vector<std::string>* args, const Pairs& pairs) {
  args->push_back(absl::StrCat(pairs.size()));
  for (const auto& [a, b] : pairs) {
    args->push_back(a);
    args->push_back(absl::StrCat(b));
  }
}

}  // namespace onestory::merge
