// The process_* metrics every Prometheus client library exports on Linux, read from /proc when
// rendering: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
#pragma once

#include "libs/metrics/metrics.h"

namespace onestory::metrics {

void AddProcessMetrics(Registry& registry);
void RemoveProcessMetrics(Registry& registry);

}  // namespace onestory::metrics
