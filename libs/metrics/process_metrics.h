// The process_* metrics every Prometheus client library exports on Linux, read from /proc when
// rendering: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
#pragma once

#include "libs/metrics/metrics.h"

namespace onestory::metrics {

void AddProcessMetrics(Registry& registry);
// User and system CPU time process `pid` (0: this one) has spent, its ended threads included, in
// seconds (/proc/<pid>/stat); 0 when it cannot be read.
double ProcessCpuSeconds(int pid = 0);
void RemoveProcessMetrics(Registry& registry);

}  // namespace onestory::metrics
