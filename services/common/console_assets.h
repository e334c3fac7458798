// The reference agent console's files (clients/console), built into the binary by
// cmake/embed_files.cmake and served by the HTTP gateway at /console/.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"

namespace onestory::service {

struct ConsoleAsset {
  absl::string_view name;          // "index.html", "console.js", ...
  absl::string_view content_type;  // "text/html; charset=utf-8", ...
  absl::string_view body;
};

// Every file of the console; index.html among them.
const std::vector<ConsoleAsset>& ConsoleAssets();

}  // namespace onestory::service
