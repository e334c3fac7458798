// Metrics: counters, gauges and histograms, rendered in the Prometheus text format.
//
//   Counter* calls = Registry::Global().GetCounter(
//       "grpc_server_handled_total", "RPCs completed", {{"method", m}, {"code", "OK"}});
//   calls->Increment();
//   Histogram* rtt = Registry::Global().GetHistogram(
//       "onestory_redis_roundtrip_seconds", "Redis command round trip", {});
//   rtt->Observe(0.0004);
//   Registry::Global().AddGauge("onestory_watches_open", "Open Watch streams",
//                               [] { return double(service->open_watches()); });
//   std::string text = Registry::Global().Render();   // served at /metrics
//
// Updates are lock-free (atomics); Get* takes a mutex, so callers keep the returned pointer
// (series live as long as the registry). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace onestory::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound (Prometheus "le" buckets), then +Inf; and the sum.
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micro_{0};               // sum in millionths
};

// Latency buckets in seconds: 50 us to 10 s.
std::vector<double> LatencyBuckets();

class Registry {
 public:
  static Registry& Global();

  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels);
  Histogram* GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                          std::vector<double> bounds = LatencyBuckets());
  // A gauge read when rendering, with fixed labels. Registering a name again replaces it.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> read,
                const Labels& labels = {});
  // A counter kept elsewhere (it only grows), read when rendering; its name ends in _total.
  void AddCounterFunction(const std::string& name, const std::string& help,
                          std::function<double()> read);
  // Removes a gauge or counter function (their owner is going away).
  void RemoveFunction(const std::string& name);

  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;      // by rendered labels
    std::map<std::string, std::unique_ptr<Histogram>> histograms;  // by rendered labels
    std::function<double()> read;                                  // AddGauge, AddCounterFunction
    std::string read_labels;                                       // rendered
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// {a="1",b="2"} with values escaped; empty for no labels.
std::string RenderLabels(const Labels& labels);

}  // namespace onestory::metrics
