// loadgen: drives a running OneStory server with many in-flight asynchronous gRPC calls over
// several channels and prints throughput and latency percentiles (also as one JSON object per
// run, appended to --json).
//
//   loadgen --target=127.0.0.1:50051 --scenario=append --concurrency=64 --duration_s=10
//   loadgen --target=... --scenario=get_context --rate=20000        # open loop, fixed rate
//   loadgen --target=... --scenario=watch --watchers=1000 --rate=2000
//   loadgen --target=... --http_target=127.0.0.1:8080 --scenario=get_context_http
//   loadgen --target=... --http_target=... --scenario=watch_sse --watchers=1000 --rate=1000
//
// Scenarios: append (one event per call), append_batch (--batch events per call), get_context,
// list, mix (60% GetContext, 35% Append, 5% List, with --watchers watches open), watch
// (propagation: an Append through one channel, its arrival at a watcher on another).
// Closed loop (--rate=0): --concurrency calls always in flight, i.e. saturation. Open loop
// (--rate>0): calls start on a fixed schedule whatever the server does, and latency counts from
// the scheduled start, so queueing is not hidden.
// Customers: --customers are created (or found) first; --events_per_customer are appended to
// each before the measurement (the populated dataset for get_context).
// --server_pid / --redis_pid: those processes' CPU time and context switches over the measured
// seconds only (not the set-up), per call, printed and in the JSON; loadgen's own beside them
// (on a machine it shares with the server, its CPU is taken from theirs).
#include <google/protobuf/arena.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/metrics/process_metrics.h"
#include "onestory/v1/context.grpc.pb.h"
#include "onestory/v1/identity.grpc.pb.h"
#include "onestory/v1/timeline.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "OneStory server address");
ABSL_FLAG(std::string, scenario, "append",
          "append | append_batch | get_context | list | mix | watch | populate");
ABSL_FLAG(std::string, http_target, "",
          "the server's HTTP listener (--http_listen), for get_context_http and watch_sse");
ABSL_FLAG(std::string, tenant, "bench", "tenant for all calls");
ABSL_FLAG(std::string, api_key, "", "API key of --tenant (default: $ONESTORY_API_KEY)");
ABSL_FLAG(int, channels, 4, "gRPC channels (separate HTTP/2 connections)");
ABSL_FLAG(int, concurrency, 64, "closed loop: calls in flight");
ABSL_FLAG(double, rate, 0, "open loop: calls started per second (0: closed loop)");
ABSL_FLAG(int, max_outstanding, 20000,
          "open loop: calls in flight at most; more are counted "
          "as dropped (the server is not keeping up)");
ABSL_FLAG(double, duration_s, 10, "measured seconds");
ABSL_FLAG(double, warmup_s, 2, "seconds run before measuring");
ABSL_FLAG(int, customers, 1000, "customers to create (or reuse) before the run");
ABSL_FLAG(int, events_per_customer, 0, "events appended to each customer before the run");
ABSL_FLAG(int, batch, 16, "events per Append for append_batch");
ABSL_FLAG(int, body_bytes, 200, "bytes of body text per event");
ABSL_FLAG(int, watchers, 0, "watch/mix: watches held open, one customer each");
ABSL_FLAG(std::string, json, "", "append one JSON object with the results to this file");
ABSL_FLAG(std::string, label, "", "free text copied into the JSON (e.g. the offered-load step)");
ABSL_FLAG(int, server_pid, 0,
          "the server's process id: its CPU time and context switches during the measured "
          "seconds are reported per call");
ABSL_FLAG(int, redis_pid, 0, "redis-server's process id: its CPU time per call, likewise");

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = onestory::v1;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The send time a watched event carries in its sent_ns attribute: "t<ns>". Bare, the digits
// would read as a payment card number about one time in ten (13-19 digits passing the Luhn
// check), and the server masks those in every free-text field, attributes included.
std::string SentAttribute(int64_t ns) { return absl::StrCat("t", ns); }
bool ParseSentAttribute(absl::string_view value, int64_t* ns) {
  return absl::ConsumePrefix(&value, "t") && absl::SimpleAtoi(value, ns);
}

// A process's CPU time (all its threads, those gone included) and context switches (its
// threads alive now), from /proc.
struct Usage {
  double user_us = 0;    // CPU time in user mode
  double system_us = 0;  // CPU time in the kernel on the process's behalf (system calls, wake-ups)
  int64_t switches = 0;
};

Usage ReadUsage(int pid) {
  Usage u;
  onestory::metrics::CpuSeconds cpu = onestory::metrics::ProcessCpu(pid);
  u.user_us = 1e6 * cpu.user;
  u.system_us = 1e6 * cpu.system;
  std::string line;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream status(task.path() / "status");
    while (std::getline(status, line)) {
      absl::string_view v = line;
      int64_t n = 0;
      if ((absl::ConsumePrefix(&v, "voluntary_ctxt_switches:") ||
           absl::ConsumePrefix(&v, "nonvoluntary_ctxt_switches:")) &&
          absl::SimpleAtoi(v, &n)) {
        u.switches += n;
      }
    }
  }
  return u;
}

// The usage of the processes named by --server_pid and --redis_pid, and of loadgen itself, over
// the measured seconds.
class ProcessCosts {
 public:
  void Add(std::string name, int pid) {
    if (pid > 0) procs_.push_back({std::move(name), pid, {}, {}});
  }
  void Start() {
    for (auto& p : procs_) p.start = ReadUsage(p.pid);
  }
  void Stop() {
    for (auto& p : procs_) p.stop = ReadUsage(p.pid);
  }
  // "server: 112 us CPU (76 user, 36 system), 7.9 context switches per call; ..." and the JSON
  // fields.
  std::string Text(int64_t calls) const {
    std::vector<std::string> parts;
    for (const auto& p : procs_) {
      PerCallCosts c = p.PerCall(calls);
      parts.push_back(absl::StrFormat(
          "%s: %.0f us CPU (%.0f user, %.0f system), %.1f context switches per call", p.name,
          c.user_us + c.system_us, c.user_us, c.system_us, c.switches));
    }
    return absl::StrJoin(parts, "; ");
  }
  std::string Json(int64_t calls) const {
    std::string out;
    for (const auto& p : procs_) {
      PerCallCosts c = p.PerCall(calls);
      absl::StrAppendFormat(&out,
                            ",\"%s_cpu_us_per_call\":%.1f,\"%s_user_us_per_call\":%.1f,"
                            "\"%s_system_us_per_call\":%.1f,\"%s_switches_per_call\":%.2f",
                            p.name, c.user_us + c.system_us, p.name, c.user_us, p.name, c.system_us,
                            p.name, c.switches);
    }
    return out;
  }
  bool empty() const { return procs_.empty(); }

 private:
  struct PerCallCosts {
    double user_us, system_us, switches;
  };
  struct Proc {
    std::string name;
    int pid;
    Usage start, stop;

    PerCallCosts PerCall(int64_t calls) const {
      auto per = [calls](double total) {
        return calls > 0 ? total / static_cast<double>(calls) : 0.0;
      };
      return {per(stop.user_us - start.user_us), per(stop.system_us - start.system_us),
              per(static_cast<double>(stop.switches - start.switches))};
    }
  };
  std::vector<Proc> procs_;
};

// Latencies in microseconds, sharded to keep lock contention off the hot path.
class Recorder {
 public:
  void Record(int64_t start_ns, bool ok) {
    int64_t us = (NowNs() - start_ns) / 1000;
    Shard& s = shards_[std::hash<std::thread::id>()(std::this_thread::get_id()) % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (!measuring_.load(std::memory_order_relaxed)) return;
    if (ok) {
      s.us.push_back(us);
    } else {
      ++s.errors;
    }
  }
  // With `costs`, their usage is read as the measurement starts and stops.
  void set_costs(ProcessCosts* costs) { costs_ = costs; }
  void Start() {
    if (costs_ != nullptr) costs_->Start();
    measuring_ = true;
  }
  void Stop() {
    measuring_ = false;
    if (costs_ != nullptr) costs_->Stop();
  }
  std::vector<int64_t> Take(int64_t* errors) {
    std::vector<int64_t> all;
    *errors = 0;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      all.insert(all.end(), s.us.begin(), s.us.end());
      *errors += s.errors;
    }
    std::sort(all.begin(), all.end());
    return all;
  }

 private:
  static constexpr int kShards = 64;
  struct Shard {
    std::mutex mu;
    std::vector<int64_t> us;
    int64_t errors = 0;
  };
  Shard shards_[kShards];
  std::atomic<bool> measuring_{false};
  ProcessCosts* costs_ = nullptr;
};

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * (sorted.size() - 1));
  return sorted[i] / 1000.0;  // ms
}

struct Stubs {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::IdentityService::Stub>> identity;
  std::vector<std::unique_ptr<v1::TimelineService::Stub>> timeline;
  std::vector<std::unique_ptr<v1::ContextService::Stub>> context;
  std::atomic<uint64_t> next{0};
  size_t Pick() { return next.fetch_add(1, std::memory_order_relaxed) % channels.size(); }
};

std::unique_ptr<Stubs> Connect(const std::string& target, int n) {
  auto s = std::make_unique<Stubs>();
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
    args.SetInt("grpc.channel_id", i);                 // distinct channel, not shared
    auto ch = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    s->channels.push_back(ch);
    s->identity.push_back(v1::IdentityService::NewStub(ch));
    s->timeline.push_back(v1::TimelineService::NewStub(ch));
    s->context.push_back(v1::ContextService::NewStub(ch));
  }
  return s;
}

// "Bearer <key>", the API key of --api_key or $ONESTORY_API_KEY.
const std::string& AuthHeader() {
  static const std::string* const header = [] {
    std::string key = absl::GetFlag(FLAGS_api_key);
    if (key.empty()) {
      if (const char* env = std::getenv("ONESTORY_API_KEY")) key = env;
    }
    return new std::string(absl::StrCat("Bearer ", key));
  }();
  return *header;
}

// "authorization: Bearer <key>" on every call.
void AddKey(grpc::ClientContext* ctx) { ctx->AddMetadata("authorization", AuthHeader()); }

// One call in flight; `done(ok)` is called once when it completes.
using Op = std::function<void(std::function<void(bool)> done)>;

// The response lives in an arena of the call's own: its messages and strings are freed at once
// with it, not one by one.
template <typename Resp>
struct Call {
  grpc::ClientContext ctx;
  google::protobuf::Arena arena;
  Resp& resp = *google::protobuf::Arena::CreateMessage<Resp>(&arena);
};

struct Workload {
  Stubs* stubs;
  std::string tenant;
  std::vector<std::string> customers;
  std::string body;
  std::atomic<uint64_t> seq{0};
  uint64_t run_id = 0;

  const std::string& RandomCustomer() {
    thread_local std::mt19937_64 rng(std::random_device{}());
    return customers[rng() % customers.size()];
  }

  v1::Event MakeEvent(int64_t sent_ns) {
    v1::Event e;
    e.set_event_id(absl::StrCat("lg-", run_id, "-", seq.fetch_add(1)));
    e.set_channel(v1::CHANNEL_CHATBOT);
    e.set_kind(v1::EVENT_KIND_MESSAGE);
    e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
    e.set_summary("order status question");
    e.set_body(body);
    e.set_conversation_id("conv-1");
    if (sent_ns) (*e.mutable_attributes())["sent_ns"] = SentAttribute(sent_ns);
    return e;
  }

  // Starts one unary call through the async stub method `method` of a stub picked round-robin
  // from `stubs_of`; done(ok) when it completes.
  template <typename Stub, typename Req, typename Resp>
  void Unary(std::vector<std::unique_ptr<Stub>>& stubs_of,
             void (Stub::async_interface::*method)(grpc::ClientContext*, const Req*, Resp*,
                                                   std::function<void(grpc::Status)>),
             const Req& req, std::function<void(bool)> done) {
    auto* call = new Call<Resp>();
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    AddKey(&call->ctx);
    (stubs_of[stubs->Pick()]->async()->*method)(&call->ctx, &req, &call->resp,
                                                [call, done](grpc::Status st) {
                                                  done(st.ok());
                                                  delete call;
                                                });
  }

  void Append(const std::string& customer, int events, int64_t sent_ns,
              std::function<void(bool)> done) {
    v1::AppendRequest req;
    req.set_tenant(tenant);
    req.mutable_customer()->set_customer_id(customer);
    for (int i = 0; i < events; ++i) *req.add_events() = MakeEvent(sent_ns);
    Unary(stubs->timeline, &v1::TimelineService::Stub::async_interface::Append, req,
          std::move(done));
  }

  void GetContext(std::function<void(bool)> done) {
    v1::GetContextRequest req;
    req.set_tenant(tenant);
    req.mutable_customer()->set_customer_id(RandomCustomer());
    Unary(stubs->context, &v1::ContextService::Stub::async_interface::GetContext, req,
          std::move(done));
  }

  void List(std::function<void(bool)> done) {
    v1::ListRequest req;
    req.set_tenant(tenant);
    req.mutable_customer()->set_customer_id(RandomCustomer());
    req.set_page_size(20);
    Unary(stubs->timeline, &v1::TimelineService::Stub::async_interface::List, req, std::move(done));
  }
};

// Blocks until n calls of op (at most `parallel` at once) completed; returns the failures.
// The state is shared with the callbacks: the last one may still be running its tail when
// this function returns.
int RunBlocking(int n, int parallel,
                const std::function<void(int, std::function<void(bool)>)>& op) {
  if (n == 0) return 0;
  struct State {
    std::atomic<int> next{0}, failed{0}, finished{0};
    absl::Notification all;
    std::function<void(int, std::function<void(bool)>)> op;
    int n;
  };
  auto st = std::make_shared<State>();
  st->op = op;
  st->n = n;
  // Each completion starts the next call first, then counts itself: once the count reaches n
  // nothing else touches the caller's frame.
  struct Issuer {
    static void Go(std::shared_ptr<State> st) {
      int i = st->next.fetch_add(1);
      if (i >= st->n) return;
      st->op(i, [st](bool ok) {
        if (!ok) ++st->failed;
        Go(st);
        if (++st->finished == st->n) st->all.Notify();
      });
    }
  };
  for (int i = 0; i < std::min(n, parallel); ++i) Issuer::Go(st);
  st->all.WaitForNotification();
  return st->failed.load();
}

std::vector<std::string> PrepareCustomers(Workload& w, int n) {
  std::vector<std::string> ids(n);
  std::mutex mu;
  int failed = RunBlocking(n, 256, [&](int i, std::function<void(bool)> done) {
    v1::ResolveRequest req;
    req.set_tenant(w.tenant);
    req.mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_CRM_ID);
    req.mutable_identifier()->set_value(absl::StrCat("loadgen-", i));
    req.set_create_if_missing(true);
    auto* call = new Call<v1::ResolveResponse>();
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    AddKey(&call->ctx);
    w.stubs->identity[w.stubs->Pick()]->async()->Resolve(&call->ctx, &req, &call->resp,
                                                         [&, i, call, done](grpc::Status st) {
                                                           if (st.ok()) {
                                                             std::lock_guard<std::mutex> lock(mu);
                                                             ids[i] = call->resp.customer_id();
                                                           }
                                                           done(st.ok());
                                                           delete call;
                                                         });
  });
  if (failed) std::fprintf(stderr, "loadgen: %d Resolve calls failed\n", failed);
  return ids;
}

void Populate(Workload& w, int events_per_customer) {
  constexpr int kBatch = 50;
  int calls_per_customer = (events_per_customer + kBatch - 1) / kBatch;
  int total = static_cast<int>(w.customers.size()) * calls_per_customer;
  auto start = Clock::now();
  int failed = RunBlocking(total, 64, [&](int i, std::function<void(bool)> done) {
    int c = i / calls_per_customer;
    int k = i % calls_per_customer;
    int n = std::min(kBatch, events_per_customer - k * kBatch);
    w.Append(w.customers[c], n, 0, std::move(done));
  });
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "loadgen: populated %zu customers x %d events in %.1f s (%d failed)\n",
               w.customers.size(), events_per_customer, s, failed);
}

// Watches held open; each arrival records now - the event's sent_ns attribute (an event without
// a readable one counts as an error).
class Watcher : public grpc::ClientReadReactor<v1::WatchResponse> {
 public:
  Watcher(Stubs* stubs, const std::string& tenant, const std::string& customer, Recorder* rec,
          std::atomic<int>* open)
      : rec_(rec), open_(open) {
    v1::WatchRequest req;
    req.set_tenant(tenant);
    req.mutable_customer()->set_customer_id(customer);
    AddKey(&ctx_);
    stubs->timeline[stubs->Pick()]->async()->Watch(&ctx_, &req, this);
    StartRead(&msg_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  // The server sends the initial metadata once the watch's start is fixed: it is open.
  void OnReadInitialMetadataDone(bool ok) override {
    if (ok && ctx_.GetServerInitialMetadata().count("onestory-stream") > 0) {
      counted_ = true;
      ++*open_;
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    auto it = msg_.event().attributes().find("sent_ns");
    int64_t sent = 0;
    bool readable = it != msg_.event().attributes().end() && ParseSentAttribute(it->second, &sent);
    rec_->Record(readable ? sent : NowNs(), readable);
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status&) override {
    if (counted_) --*open_;
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }

 private:
  grpc::ClientContext ctx_;
  v1::WatchResponse msg_;
  bool counted_ = false;  // set before OnDone (gRPC orders the reactions)
  Recorder* rec_;
  std::atomic<int>* open_;
  absl::Notification done_;
};

// The same watches as Server-Sent Events over HTTP/1.1 (what a browser's EventSource reads):
// one connection and thread each; each message records now - its event's sent_ns.
class SseWatcher {
 public:
  SseWatcher(const std::string& http_target, const std::string& tenant, const std::string& customer,
             Recorder* rec, std::atomic<int>* open)
      : client_(http_target) {
    std::string path = absl::StrCat("/onestory.v1.TimelineService/Watch?tenant=", tenant,
                                    "&customer.customerId=", customer);
    thread_ = std::thread([this, path, rec, open] {
      httplib::Headers headers = {{"Authorization", AuthHeader()}};
      // Longer than the server's heartbeat (15 s): an idle stream is not a dead one.
      client_.set_read_timeout(std::chrono::seconds(60));
      auto res = client_.Get(path, headers, [this, rec, open](const char* data, size_t len) {
        if (!counted_) {
          counted_ = true;  // the stream's first bytes: it is open
          ++*open;
        }
        buffer_.append(data, len);
        // One line per "data:" field; each holds the event's attributes.
        for (size_t nl; (nl = buffer_.find('\n')) != std::string::npos; buffer_.erase(0, nl + 1)) {
          absl::string_view line(buffer_.data(), nl);
          constexpr absl::string_view kSent = "\"sent_ns\":\"";
          size_t at = line.find(kSent);
          if (!absl::StartsWith(line, "data:") || at == absl::string_view::npos) continue;
          absl::string_view value = line.substr(at + kSent.size());
          int64_t sent = 0;
          bool readable = ParseSentAttribute(value.substr(0, value.find('"')), &sent);
          rec->Record(readable ? sent : NowNs(), readable);
        }
        return true;
      });
      if (counted_) --*open;
      if (!counted_ && !stopped_) {
        std::fprintf(stderr, "loadgen: an event stream did not open: %s\n",
                     res ? absl::StrCat("HTTP ", res->status, " ", res->body).c_str()
                         : httplib::to_string(res.error()).c_str());
      }
    });
  }
  void Cancel() {
    stopped_ = true;
    client_.stop();
  }
  void Wait() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  httplib::Client client_;
  bool counted_ = false;
  std::atomic<bool> stopped_{false};
  std::string buffer_;
  std::thread thread_;
};

struct Result {
  double seconds = 0;
  int64_t ok = 0, errors = 0, dropped = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
};

// Runs op in closed loop (rate == 0) or open loop for warmup + duration.
// The in-flight accounting is shared with the callbacks, which may still be finishing their
// last statement when Drive returns.
struct DriveState {
  std::atomic<int64_t> in_flight{1};  // 1 held by Drive until every call is started
  std::atomic<bool> stop{false};
  absl::Notification drained;
  Op op;
  Recorder* rec;
  Clock::time_point end_at;

  static void Finish(const std::shared_ptr<DriveState>& st) {
    if (--st->in_flight == 0) st->drained.Notify();
  }
  // Closed loop: each completion starts the next call of its slot until the end.
  static void Issue(const std::shared_ptr<DriveState>& st) {
    if (Clock::now() >= st->end_at) return;
    ++st->in_flight;
    int64_t start = NowNs();
    st->op([st, start](bool ok) {
      st->rec->Record(start, ok);
      Issue(st);
      Finish(st);
    });
  }
};

Result Drive(const Op& op, Recorder& rec, double rate, int concurrency, double warmup_s,
             double duration_s, int max_outstanding) {
  auto t0 = Clock::now();
  auto measure_at =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  auto end_at = measure_at + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(duration_s));
  auto st = std::make_shared<DriveState>();
  st->op = op;
  st->rec = &rec;
  st->end_at = end_at;
  int64_t dropped = 0;
  std::thread timer([&] {
    std::this_thread::sleep_until(measure_at);
    rec.Start();
    std::this_thread::sleep_until(end_at);
    rec.Stop();
  });
  if (rate <= 0) {
    for (int i = 0; i < concurrency; ++i) DriveState::Issue(st);
  } else {
    auto period = std::chrono::duration<double>(1.0 / rate);
    for (uint64_t k = 0;; ++k) {
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(k));
      if (due >= end_at) break;
      std::this_thread::sleep_until(due);
      int64_t scheduled =
          std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
      if (st->in_flight.load() > max_outstanding) {
        if (due >= measure_at) ++dropped;
        continue;
      }
      ++st->in_flight;
      op([st, scheduled](bool ok) {
        st->rec->Record(scheduled, ok);
        DriveState::Finish(st);
      });
    }
  }
  DriveState::Finish(st);  // release Drive's hold
  st->drained.WaitForNotification();
  timer.join();
  Result r;
  r.seconds = duration_s;
  std::vector<int64_t> lat = rec.Take(&r.errors);
  r.ok = static_cast<int64_t>(lat.size());
  r.dropped = dropped;
  r.p50 = Percentile(lat, 0.50);
  r.p99 = Percentile(lat, 0.99);
  r.p999 = Percentile(lat, 0.999);
  r.max = lat.empty() ? 0 : lat.back() / 1000.0;
  return r;
}

// GetContext as HTTP/JSON (Connect) calls in closed loop: `concurrency` threads, each with a
// keep-alive connection of its own, for warmup + duration.
Result DriveHttpGetContext(Workload& w, const std::string& http_target, Recorder& rec,
                           int concurrency, double warmup_s, double duration_s) {
  auto t0 = Clock::now();
  auto measure_at =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  auto end_at = measure_at + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(duration_s));
  std::thread timer([&] {
    std::this_thread::sleep_until(measure_at);
    rec.Start();
    std::this_thread::sleep_until(end_at);
    rec.Stop();
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < concurrency; ++i) {
    threads.emplace_back([&] {
      httplib::Client client(http_target);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      httplib::Headers headers = {{"Authorization", AuthHeader()}};
      while (Clock::now() < end_at) {
        std::string body =
            absl::StrCat("{\"tenant\":\"", w.tenant, "\",\"customer\":{\"customerId\":\"",
                         w.RandomCustomer(), "\"}}");
        int64_t start = NowNs();
        auto res = client.Post("/onestory.v1.ContextService/GetContext", headers, body,
                               "application/json");
        rec.Record(start, res && res->status == 200);
      }
    });
  }
  for (auto& t : threads) t.join();
  timer.join();
  Result r;
  r.seconds = duration_s;
  std::vector<int64_t> lat = rec.Take(&r.errors);
  r.ok = static_cast<int64_t>(lat.size());
  r.p50 = Percentile(lat, 0.50);
  r.p99 = Percentile(lat, 0.99);
  r.p999 = Percentile(lat, 0.999);
  r.max = lat.empty() ? 0 : lat.back() / 1000.0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string scenario = absl::GetFlag(FLAGS_scenario);
  auto stubs = Connect(absl::GetFlag(FLAGS_target), std::max(1, absl::GetFlag(FLAGS_channels)));
  Workload w;
  w.stubs = stubs.get();
  w.tenant = absl::GetFlag(FLAGS_tenant);
  w.body = std::string(absl::GetFlag(FLAGS_body_bytes), 'b');
  w.run_id = static_cast<uint64_t>(NowNs());
  w.customers = PrepareCustomers(w, std::max(1, absl::GetFlag(FLAGS_customers)));
  if (absl::GetFlag(FLAGS_events_per_customer) > 0) {
    Populate(w, absl::GetFlag(FLAGS_events_per_customer));
  }
  if (scenario == "populate") return 0;

  Recorder rec;
  Recorder watch_rec;
  ProcessCosts costs;
  costs.Add("server", absl::GetFlag(FLAGS_server_pid));
  costs.Add("redis", absl::GetFlag(FLAGS_redis_pid));
  costs.Add("loadgen", getpid());
  rec.set_costs(&costs);
  std::atomic<int> open_watches{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  int n_watchers = std::min<int>(absl::GetFlag(FLAGS_watchers), w.customers.size());
  for (int i = 0; i < n_watchers && scenario != "watch_sse"; ++i) {
    watchers.push_back(std::make_unique<Watcher>(stubs.get(), w.tenant, w.customers[i], &watch_rec,
                                                 &open_watches));
  }
  std::vector<std::unique_ptr<SseWatcher>> sse_watchers;
  std::string http_target = absl::GetFlag(FLAGS_http_target);
  if ((scenario == "watch_sse" || scenario == "get_context_http") && http_target.empty()) {
    std::fprintf(stderr, "loadgen: --scenario=%s needs --http_target\n", scenario.c_str());
    return 2;
  }
  if (scenario == "watch_sse") {
    // The same number of watches, as Server-Sent Events instead of gRPC streams.
    for (int i = 0; i < n_watchers; ++i) {
      sse_watchers.push_back(std::make_unique<SseWatcher>(http_target, w.tenant, w.customers[i],
                                                          &watch_rec, &open_watches));
    }
  }
  if (n_watchers > 0) {
    // Every watch open: subscribed and its start fixed (connections may wait for a SYN
    // retransmit).
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (open_watches.load() < n_watchers && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "loadgen: %d of %d watches open\n", open_watches.load(), n_watchers);
  }

  Op op;
  int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  if (scenario == "append") {
    op = [&](std::function<void(bool)> done) { w.Append(w.RandomCustomer(), 1, 0, done); };
  } else if (scenario == "append_batch") {
    op = [&](std::function<void(bool)> done) { w.Append(w.RandomCustomer(), batch, 0, done); };
  } else if (scenario == "get_context") {
    op = [&](std::function<void(bool)> done) { w.GetContext(done); };
  } else if (scenario == "list") {
    op = [&](std::function<void(bool)> done) { w.List(done); };
  } else if (scenario == "mix") {
    op = [&](std::function<void(bool)> done) {
      thread_local std::mt19937 rng(std::random_device{}());
      int r = rng() % 100;
      if (r < 60) return w.GetContext(done);
      if (r < 95) return w.Append(w.RandomCustomer(), 1, NowNs(), done);
      w.List(done);
    };
  } else if (scenario == "get_context_http") {
    op = nullptr;  // driven by DriveHttpGetContext
  } else if (scenario == "watch" || scenario == "watch_sse") {
    if (n_watchers == 0) {
      std::fprintf(stderr, "loadgen: --scenario=%s needs --watchers\n", scenario.c_str());
      return 2;
    }
    // Appends go only to watched customers and carry their send time.
    op = [&](std::function<void(bool)> done) {
      thread_local std::mt19937_64 rng(std::random_device{}());
      w.Append(w.customers[rng() % n_watchers], 1, NowNs(), done);
    };
  } else {
    std::fprintf(stderr, "loadgen: unknown --scenario=%s\n", scenario.c_str());
    return 2;
  }

  double rate = absl::GetFlag(FLAGS_rate);
  int concurrency = absl::GetFlag(FLAGS_concurrency);
  // The watch scenario reports arrival latency at the watchers, so its timer drives both.
  Recorder* primary = &rec;
  Result r;
  bool watching = scenario == "watch" || scenario == "watch_sse";
  if (scenario == "get_context_http") {
    r = DriveHttpGetContext(w, http_target, rec, concurrency, absl::GetFlag(FLAGS_warmup_s),
                            absl::GetFlag(FLAGS_duration_s));
  } else if (watching) {
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_warmup_s)));
      watch_rec.Start();
      std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_duration_s)));
      watch_rec.Stop();
    });
    Result appends = Drive(op, rec, rate, concurrency, absl::GetFlag(FLAGS_warmup_s),
                           absl::GetFlag(FLAGS_duration_s), absl::GetFlag(FLAGS_max_outstanding));
    t.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    int64_t unreadable = 0;  // arrivals without a send time
    std::vector<int64_t> lat = watch_rec.Take(&unreadable);
    r.seconds = appends.seconds;
    r.ok = static_cast<int64_t>(lat.size());
    r.errors = appends.errors + unreadable;
    r.dropped = appends.dropped;
    r.p50 = Percentile(lat, 0.5);
    r.p99 = Percentile(lat, 0.99);
    r.p999 = Percentile(lat, 0.999);
    r.max = lat.empty() ? 0 : lat.back() / 1000.0;
  } else {
    r = Drive(op, *primary, rate, concurrency, absl::GetFlag(FLAGS_warmup_s),
              absl::GetFlag(FLAGS_duration_s), absl::GetFlag(FLAGS_max_outstanding));
  }
  for (auto& wt : watchers) wt->Cancel();
  for (auto& wt : watchers) wt->Wait();
  for (auto& wt : sse_watchers) wt->Cancel();
  for (auto& wt : sse_watchers) wt->Wait();
  if (watching)
    std::fprintf(stderr, "loadgen: %d watches were open at the end\n", open_watches.load());

  double calls_per_s = r.ok / r.seconds;
  double events_per_s = calls_per_s * (scenario == "append_batch" ? batch : 1);
  std::string mode = rate > 0 ? absl::StrFormat("open loop %.0f/s", rate)
                              : absl::StrFormat("closed loop x%d", concurrency);
  std::printf(
      "%-12s %-22s %10.0f ok/s (%10.0f events/s)  p50 %7.3f ms  p99 %7.3f ms  "
      "p99.9 %7.3f ms  max %8.3f ms  errors %lld  dropped %lld%s\n",
      scenario.c_str(), mode.c_str(), calls_per_s, events_per_s, r.p50, r.p99, r.p999, r.max,
      static_cast<long long>(r.errors), static_cast<long long>(r.dropped),
      watching ? "  (latency: append sent -> arrival at watcher)" : "");
  // Per call over the measured seconds (appends for watch: the cost of an append and its
  // delivery).
  int64_t calls = static_cast<int64_t>(calls_per_s * r.seconds + 0.5);
  if (!costs.empty()) std::printf("%-12s %s\n", "", costs.Text(calls).c_str());
  if (std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path, std::ios::app);
    out << absl::StrFormat(
        "{\"scenario\":\"%s\",\"label\":\"%s\",\"offered_rate\":%.1f,\"concurrency\":%d,"
        "\"channels\":%d,\"watchers\":%d,\"batch\":%d,\"body_bytes\":%d,\"seconds\":%.1f,"
        "\"ok_per_s\":%.1f,\"events_per_s\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
        "\"p999_ms\":%.4f,\"max_ms\":%.4f,\"errors\":%lld,\"dropped\":%lld%s}\n",
        scenario, absl::GetFlag(FLAGS_label), rate, concurrency, absl::GetFlag(FLAGS_channels),
        n_watchers, batch, absl::GetFlag(FLAGS_body_bytes), r.seconds, calls_per_s, events_per_s,
        r.p50, r.p99, r.p999, r.max, static_cast<long long>(r.errors),
        static_cast<long long>(r.dropped), costs.Json(calls));
  }
  return r.ok > 0 ? 0 : 1;
}
