// The process_* metrics every Prometheus client library exports on Linux, read from /proc when
// rendering: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
#pragma once

#include "libs/metrics/metrics.h"

namespace onestory::metrics {

void AddProcessMetrics(Registry& registry);
// CPU time process `pid` (0: this one) has spent, its ended threads included, in seconds
// (/proc/<pid>/stat): in user mode and in the kernel on its behalf; 0 when it cannot be read.
struct CpuSeconds {
  double user = 0;
  double system = 0;
};
CpuSeconds ProcessCpu(int pid = 0);
// ProcessCpu's user and system together.
double ProcessCpuSeconds(int pid = 0);
void RemoveProcessMetrics(Registry& registry);

}  // namespace onestory::metrics
