#include "libs/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace onestory::metrics {
namespace {

constexpr const char* kNames[] = {"process_cpu_seconds_total",
                                  "process_resident_memory_bytes",
                                  "process_virtual_memory_bytes",
                                  "process_open_fds",
                                  "process_max_fds",
                                  "process_start_time_seconds"};

// The fields of /proc/<pid>/stat (pid 0: /proc/self/stat) after the command name: fields[0] is
// the state (field 3).
std::vector<std::string> StatFields(int pid = 0) {
  std::ifstream in(pid > 0 ? "/proc/" + std::to_string(pid) + "/stat" : "/proc/self/stat");
  std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return {};
  return absl::StrSplit(line.substr(close + 2), ' ', absl::SkipEmpty());
}

// Field n of /proc/self/stat as man proc(5) numbers them (utime is 14).
double StatField(const std::vector<std::string>& f, size_t n) {
  double v = 0;
  if (n >= 3 && n - 3 < f.size()) (void)absl::SimpleAtod(f[n - 3], &v);
  return v;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

double OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;  // not the one opendir holds
}

}  // namespace

CpuSeconds ProcessCpu(int pid) {
  std::vector<std::string> f = StatFields(pid);
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {StatField(f, 14) / ticks, StatField(f, 15) / ticks};
}

double ProcessCpuSeconds(int pid) {
  CpuSeconds cpu = ProcessCpu(pid);
  return cpu.user + cpu.system;
}

void AddProcessMetrics(Registry& r) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  r.AddCounterFunction("process_cpu_seconds_total", "User and system CPU time spent, in seconds",
                       [] { return ProcessCpuSeconds(); });
  r.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes",
             [page] { return StatField(StatFields(), 24) * page; });
  r.AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes",
             [] { return StatField(StatFields(), 23); });
  r.AddGauge("process_open_fds", "Open file descriptors", OpenFds);
  r.AddGauge("process_max_fds", "The limit on open file descriptors", [] {
    rlimit lim{};
    return getrlimit(RLIMIT_NOFILE, &lim) == 0 ? static_cast<double>(lim.rlim_cur) : 0.0;
  });
  const double start = BootTimeSeconds() + StatField(StatFields(), 22) / ticks;
  r.AddGauge("process_start_time_seconds", "Start time of the process since the Unix epoch",
             [start] { return start; });
}

void RemoveProcessMetrics(Registry& r) {
  for (const char* name : kNames) r.RemoveFunction(name);
}

}  // namespace onestory::metrics
