#include "libs/engagement/journey_stats.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/barrier.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_journey_rank.h"
#include "libs/lua/engagement_journey_stats.h"

namespace onestory::engagement {
namespace {

using redis::Reply;

int64_t ToInt(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  int64_t v = 0;
  if (!absl::SimpleAtoi(r.str, &v)) {
    double d = 0;
    if (absl::SimpleAtod(r.str, &d)) v = static_cast<int64_t>(d);
  }
  return v;
}

// One stage's figures, merged over the buckets.
struct Stage {
  std::string name;
  int64_t open = 0;
  int64_t first = std::numeric_limits<int64_t>::max();  // earliest entry of an open case
  int64_t last = std::numeric_limits<int64_t>::min();   // latest
  bool all_listed = true;                               // every bucket listed its entry times
  std::vector<int64_t> entries;                         // the listed entry times
  std::vector<int64_t> stays;
  int64_t counters[3] = {0, 0, 0};  // entered, repeat contacts, channel switches
};

// The entry time of rank `rank` (0: the earliest) among a stage's open cases, being narrowed:
// it is in (lo, hi]; `below` cases entered at or before lo, `inside` in (lo, hi].
struct Target {
  size_t stage = 0;
  int64_t rank = 0;
  int64_t lo = 0;
  int64_t hi = 0;
  int64_t below = 0;
  int64_t inside = 0;
  std::vector<int64_t> splits;  // this round's count query (empty: a read of the range)
  std::vector<int64_t> found;   // this round's answers, summed (counts) or merged (times)
  int64_t value = -1;           // the answer, once known
};

struct StatsRun {
  redis::Client* client = nullptr;
  std::string tenant;
  absl::Time deadline;
  Callback<v1::GetJourneyStatsResponse> done;
  std::vector<std::string> stage_names;
  absl::Mutex mu;
  std::vector<Stage> stages ABSL_GUARDED_BY(mu);
  std::vector<Target> targets ABSL_GUARDED_BY(mu);
  absl::Status error ABSL_GUARDED_BY(mu);
};

// Adds one bucket's engagement_journey_stats reply.
absl::Status AddBucket(const Reply& r, std::vector<Stage>* stages) {
  if (!r.is_array() || r.elements.size() != stages->size()) {
    return absl::InternalError("unexpected journey stats reply");
  }
  for (size_t s = 0; s < stages->size(); ++s) {
    Stage& st = (*stages)[s];
    const auto& e = r.elements[s].elements;
    if (e.size() < 8) return absl::InternalError("unexpected journey stats reply");
    const int64_t n = ToInt(e[0]);
    st.open += n;
    size_t i = 3;
    size_t listed = 0;
    for (; i < e.size() && e[i].str != "|"; ++i, ++listed) st.entries.push_back(ToInt(e[i]));
    if (n > 0) {
      st.first = std::min(st.first, ToInt(e[1]));
      st.last = std::max(st.last, ToInt(e[2]));
      if (listed != static_cast<size_t>(n)) st.all_listed = false;
    }
    for (++i; i < e.size() && e[i].str != "|"; ++i) st.stays.push_back(ToInt(e[i]));
    for (int k = 0; k < 3 && i + 1 + k < e.size(); ++k) st.counters[k] += ToInt(e[i + 1 + k]);
  }
  return absl::OkStatus();
}

void Finish(std::shared_ptr<StatsRun> run) {
  const int64_t now = NowMillis();
  v1::GetJourneyStatsResponse resp;
  {
    absl::MutexLock l(&run->mu);
    for (size_t s = 0; s < run->stages.size(); ++s) {
      Stage& st = run->stages[s];
      v1::StageStats* out = resp.add_stages();
      out->set_stage(st.name);
      out->set_open_cases(st.open);
      std::vector<int64_t> middle;
      for (const Target& t : run->targets) {
        if (t.stage == s) middle.push_back(t.value);
      }
      if (!middle.empty()) {
        int64_t median = 0;
        for (int64_t t : middle) median += now - t;
        median /= static_cast<int64_t>(middle.size());
        *out->mutable_median_time_in_stage() =
            google::protobuf::util::TimeUtil::MillisecondsToDuration(std::max<int64_t>(0, median));
      }
      if (!st.stays.empty()) {
        std::sort(st.stays.begin(), st.stays.end());
        const size_t n = st.stays.size();
        const int64_t median =
            n % 2 == 1 ? st.stays[n / 2] : (st.stays[n / 2 - 1] + st.stays[n / 2]) / 2;
        *out->mutable_median_completed_time_in_stage() =
            google::protobuf::util::TimeUtil::MillisecondsToDuration(median);
      }
      out->set_entered(st.counters[0]);
      out->set_repeat_contacts(st.counters[1]);
      out->set_channel_switches(st.counters[2]);
    }
  }
  run->done(std::move(resp));
}

// One narrowing round over every bucket for the targets not found yet; Finish once all are.
void Narrow(std::shared_ptr<StatsRun> run) {
  std::vector<std::string> queries;
  {
    absl::MutexLock l(&run->mu);
    for (Target& t : run->targets) {
      if (t.value >= 0) continue;
      t.found.clear();
      t.splits.clear();
      const std::string& name = run->stages[t.stage].name;
      if (t.hi - t.lo == 1) {
        t.value = t.hi;  // every case inside entered at hi
        continue;
      }
      if (t.inside <= kFetchedAtOnce) {
        queries.push_back(absl::StrCat("f:", name, ":", t.lo, ":", t.hi, ":", t.inside));
        continue;
      }
      const int64_t width = t.hi - t.lo;
      for (int i = 1; i < 64; ++i) {
        const int64_t v = t.lo + static_cast<int64_t>(static_cast<__int128>(width) * i / 64);
        if (v > t.lo && v < t.hi && (t.splits.empty() || v > t.splits.back())) {
          t.splits.push_back(v);
        }
      }
      queries.push_back(absl::StrCat("c:", name, ":", absl::StrJoin(t.splits, ",")));
    }
  }
  if (queries.empty()) return Finish(std::move(run));
  auto round = Barrier::Make(keys::kTenantBuckets, [run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    {
      absl::MutexLock l(&run->mu);
      if (!run->error.ok()) return run->done(run->error);
      for (Target& t : run->targets) {
        if (t.value >= 0) continue;
        if (t.splits.empty()) {  // the times inside (lo, hi], from every bucket
          // Cases that opened or left between two rounds may shift the rank a little: the
          // nearest time read stands in.
          std::sort(t.found.begin(), t.found.end());
          if (t.found.empty()) {
            t.value = t.hi;
            continue;
          }
          const int64_t at =
              std::clamp<int64_t>(t.rank - t.below, 0, static_cast<int64_t>(t.found.size()) - 1);
          t.value = t.found[at];
          continue;
        }
        // found[i]: cases entered at or before splits[i]. The target is in the first part
        // whose end holds more than `rank` cases.
        int64_t lo = t.lo, below = t.below, hi = t.hi, upto = t.below + t.inside;
        for (size_t i = 0; i < t.splits.size(); ++i) {
          if (t.found[i] > t.rank) {
            hi = t.splits[i];
            upto = t.found[i];
            break;
          }
          lo = t.splits[i];
          below = t.found[i];
        }
        t.lo = lo;
        t.hi = hi;
        t.below = below;
        t.inside = upto - below;
        if (t.inside <= 0) t.value = t.hi;  // the cases inside left meanwhile
      }
    }
    Narrow(run);
  });
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    lua::EngagementJourneyRank call;
    call.journey_open = keys::TenantKeys(run->tenant, b).journey_open();
    call.queries = queries;
    run->client->Fcall(call, run->deadline, [run, round](absl::StatusOr<Reply> r) {
      if (r.ok()) {
        absl::MutexLock l(&run->mu);
        size_t q = 0;
        for (Target& t : run->targets) {
          if (t.value >= 0) continue;
          if (!r->is_array() || q >= r->elements.size()) {
            run->error = absl::InternalError("unexpected journey rank reply");
            break;
          }
          const auto& e = r->elements[q++].elements;
          if (t.splits.empty()) {
            for (const Reply& v : e) t.found.push_back(ToInt(v));
          } else {
            if (e.size() != t.splits.size()) {
              run->error = absl::InternalError("unexpected journey rank reply");
              break;
            }
            t.found.resize(t.splits.size(), 0);
            for (size_t i = 0; i < e.size(); ++i) t.found[i] += ToInt(e[i]);
          }
        }
      }
      round->Arrive(r.status());
    });
  }
}

// After every bucket's stats: the middle entry times of stages whose buckets listed them all,
// and targets to narrow for the others.
void Middle(std::shared_ptr<StatsRun> run) {
  {
    absl::MutexLock l(&run->mu);
    for (size_t s = 0; s < run->stages.size(); ++s) {
      Stage& st = run->stages[s];
      if (st.open <= 0) continue;
      // The middle case, or the two middle ones (today's median of an even count).
      std::vector<int64_t> ranks = {(st.open - 1) / 2};
      if (st.open % 2 == 0) ranks.push_back(st.open / 2);
      for (int64_t rank : ranks) {
        Target t;
        t.stage = s;
        t.rank = rank;
        if (st.all_listed && static_cast<int64_t>(st.entries.size()) == st.open) {
          std::nth_element(st.entries.begin(), st.entries.begin() + rank, st.entries.end());
          t.value = st.entries[rank];
        } else {
          t.lo = st.first - 1;
          t.hi = st.last;
          t.below = 0;
          t.inside = st.open;
        }
        run->targets.push_back(std::move(t));
      }
    }
  }
  Narrow(std::move(run));
}

}  // namespace

void ReadJourneyStats(redis::Client* client, const std::string& tenant, absl::Time deadline,
                      Callback<v1::GetJourneyStatsResponse> done) {
  auto run = std::make_shared<StatsRun>();
  run->client = client;
  run->tenant = tenant;
  run->deadline = deadline;
  run->done = std::move(done);
  client->Command({"GET", keys::TenantKeys(tenant).journey_stages()}, deadline,
                  [run](absl::StatusOr<Reply> r) {
                    if (!r.ok()) return run->done(r.status());
                    if (r->is_nil()) return run->done(v1::GetJourneyStatsResponse());
                    {
                      absl::MutexLock l(&run->mu);
                      for (absl::string_view s : absl::StrSplit(r->str, '\n', absl::SkipEmpty())) {
                        run->stage_names.emplace_back(s);
                        run->stages.emplace_back().name = std::string(s);
                      }
                    }
                    auto all = Barrier::Make(keys::kTenantBuckets, [run](absl::Status st) {
                      if (!st.ok()) return run->done(st);
                      {
                        absl::MutexLock l(&run->mu);
                        if (!run->error.ok()) return run->done(run->error);
                      }
                      Middle(run);
                    });
                    for (int b = 0; b < keys::kTenantBuckets; ++b) {
                      const keys::TenantKeys tk(run->tenant, b);
                      lua::EngagementJourneyStats call;
                      call.journey_counters = tk.journey_counters();
                      call.journey_open = tk.journey_open();
                      call.journey_stays = tk.journey_stays();
                      call.listed = kListedPerBucket;
                      call.stages = run->stage_names;
                      run->client->Fcall(call, run->deadline, [run, all](absl::StatusOr<Reply> r) {
                        if (r.ok()) {
                          absl::MutexLock l(&run->mu);
                          if (absl::Status st = AddBucket(*r, &run->stages); !st.ok())
                            run->error = st;
                        }
                        all->Arrive(r.status());
                      });
                    }
                  });
}

void CountOpenCases(redis::Client* client, const std::string& tenant,
                    const std::vector<std::string>& stages, absl::Time deadline,
                    Callback<std::vector<int64_t>> done) {
  if (stages.empty()) return done(std::vector<int64_t>());
  struct Counts {
    absl::Mutex mu;
    std::vector<int64_t> n ABSL_GUARDED_BY(mu);
    absl::Status error ABSL_GUARDED_BY(mu);
  };
  auto counts = std::make_shared<Counts>();
  counts->n.assign(stages.size(), 0);
  auto all = Barrier::Make(keys::kTenantBuckets,
                           [counts, done = std::move(done)](absl::Status st) mutable {
                             absl::MutexLock l(&counts->mu);
                             if (st.ok()) st = counts->error;
                             if (!st.ok()) return done(st);
                             done(counts->n);
                           });
  std::vector<std::string> queries;
  for (const std::string& s : stages) queries.push_back(absl::StrCat("n:", s, ":"));
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    lua::EngagementJourneyRank call;
    call.journey_open = keys::TenantKeys(tenant, b).journey_open();
    call.queries = queries;
    client->Fcall(call, deadline, [counts, all](absl::StatusOr<Reply> r) {
      if (r.ok()) {
        absl::MutexLock l(&counts->mu);
        if (!r->is_array() || r->elements.size() != counts->n.size()) {
          counts->error = absl::InternalError("unexpected journey rank reply");
        } else {
          for (size_t i = 0; i < counts->n.size(); ++i) {
            if (!r->elements[i].elements.empty()) counts->n[i] += ToInt(r->elements[i].elements[0]);
          }
        }
      }
      all->Arrive(r.status());
    });
  }
}

}  // namespace onestory::engagement
