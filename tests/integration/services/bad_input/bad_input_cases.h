// The bad-input catalogue, one function per service, each defined in <service>_cases.cc. A new
// case goes into its service's file; bad_input_test.cc runs every case of Catalogue().
#pragma once

#include <vector>

#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {

std::vector<BadInputCase> IdentityCases();      // Resolve, Link, Unlink
std::vector<BadInputCase> ProfileCases();       // GetProfile, UpdateProfile
std::vector<BadInputCase> TimelineCases();      // Append, List, Watch
std::vector<BadInputCase> ContextCases();       // GetContext
std::vector<BadInputCase> MergeCases();         // Merge, Unmerge, GetMergeHistory, SuggestMerges
std::vector<BadInputCase> ConversationCases();  // StartConversation, Handoff, EndConversation, ...
std::vector<BadInputCase> CaseCases();          // OpenCase, UpdateCase, ..., the journey
std::vector<BadInputCase> AlertCases();         // ListAlerts, AckAlert, WatchAlerts

// Every case of every service.
std::vector<BadInputCase> Catalogue();

}  // namespace onestory::testing::bad_input
