#include "libs/metrics/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace onestory::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double value) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(std::max(0.0, value) * 1e6)),
                       std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

double Histogram::sum() const { return sum_micro_.load(std::memory_order_relaxed) / 1e6; }

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
}

Registry& Registry::Global() {
  static Registry* r = new Registry();
  return *r;
}

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    absl::StrAppend(&out, labels[i].first, "=\"");
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\"";
  }
  return out + "}";
}

Counter* Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& slot = f.counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Histogram* Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const Labels& labels, std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& slot = f.histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

void Registry::AddGauge(const std::string& name, const std::string& help,
                        std::function<double()> read, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "gauge";
  f.read = std::move(read);
  f.read_labels = RenderLabels(labels);
}

void Registry::AddCounterFunction(const std::string& name, const std::string& help,
                                  std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "counter";
  f.read = std::move(read);
  f.read_labels.clear();
}

void Registry::RemoveFunction(const std::string& name) {
  absl::MutexLock lock(&mu_);
  families_.erase(name);
}

std::string Registry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name, " ", f.type, "\n");
    if (f.read) {
      absl::StrAppend(&out, name, f.read_labels, " ", absl::StrFormat("%.17g", f.read()), "\n");
    }
    for (const auto& [labels, c] : f.counters) {
      absl::StrAppend(&out, name, labels, " ", c->value(), "\n");
    }
    for (const auto& [labels, h] : f.histograms) {
      // Labels rendered as {a="1"}: "le" joins them inside the braces.
      std::string inner = labels.empty() ? "" : labels.substr(1, labels.size() - 2) + ",";
      std::vector<uint64_t> counts = h->CumulativeCounts();
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        absl::StrAppend(&out, name, "_bucket{", inner, "le=\"",
                        absl::StrFormat("%g", h->bounds()[i]), "\"} ", counts[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket{", inner, "le=\"+Inf\"} ", counts.back(), "\n");
      absl::StrAppend(&out, name, "_sum", labels, " ", absl::StrFormat("%.6f", h->sum()), "\n");
      absl::StrAppend(&out, name, "_count", labels, " ", counts.back(), "\n");
    }
  }
  return out;
}

}  // namespace onestory::metrics
