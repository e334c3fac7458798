#include "services/server/onestory_server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "libs/audit/audit_upgrade.h"
#include "libs/common/log.h"
#include "libs/engagement/alert_upgrade.h"
#include "libs/engagement/journey_upgrade.h"
#include "libs/lua/library.h"
#include "libs/metrics/metrics.h"
#include "libs/metrics/process_metrics.h"
#include "services/common/actor_interceptor.h"
#include "services/common/audit_interceptor.h"
#include "services/common/metrics_interceptor.h"
#include "services/common/request_id.h"

namespace onestory::service {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return text.str();
}

// The oldest error OpenSSL queued on this thread (the queue is then emptied).
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no PEM block of that kind";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// A PEM pass phrase callback that has none, so an encrypted key fails instead of prompting.
int NoPassPhrase(char*, int, int, void*) { return 0; }

// Checks that the chain's first certificate and the key parse and are a pair. gRPC checks this
// only when the port is bound, and then reports just "cannot listen".
absl::Status CheckKeyPair(const TlsOptions& tls, const std::string& cert_pem,
                          const std::string& key_pem) {
  auto fail = [&tls](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert ", tls.cert_file, " and tls_key ", tls.key_file, ": ", why));
  };
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassPhrase, nullptr), X509_free);
  if (cert == nullptr) {
    return fail(absl::StrCat("the certificate cannot be read (", OpenSslError(), ")"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassPhrase, nullptr), EVP_PKEY_free);
  if (key == nullptr) {
    return fail(absl::StrCat("the private key cannot be read (", OpenSslError(),
                             "; an unencrypted PEM private key is needed)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    OpenSslError();  // empties the queue
    return fail(
        "the private key does not belong to the certificate (the certificate's public key is "
        "another key's)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(const TlsOptions& tls) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  absl::StatusOr<std::string> cert = ReadPem("tls_cert", tls.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("tls_key", tls.key_file);
  if (!key.ok()) return key.status();
  if (absl::Status st = CheckKeyPair(tls, *cert, *key); !st.ok()) return st;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("tls_client_ca", tls.client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// HTTP/2 keepalive, both ways. Clients behind load balancers ping idle connections (grpc-js and
// grpcio integrators set 1-30 s): pings 0.5 s or more apart are accepted with or without calls
// open (half the fastest common setting, so a late timer never counts against a client); a
// faster ping is a strike, and the third strike ends the connection ("too_many_pings").
// The server pings a connection idle for 30 s (an hours-long Watch with no events included)
// and closes it when no answer comes within 10 s, so dead peers free their streams.
void SetKeepalivePolicy(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
                             0);  // keep pinging idle Watches
}

}  // namespace

absl::StatusOr<std::unique_ptr<OneStoryServer>> OneStoryServer::Start(ServerOptions options) {
  auto s = std::unique_ptr<OneStoryServer>(new OneStoryServer());
  if (options.auth == nullptr) options.auth = Authenticator::AllowAll();
  s->options_ = options;
  const Authenticator* auth = options.auth.get();
  s->redis_ = std::make_unique<redis::Client>(options.redis);
  // Wait briefly for a first connection so the first calls do not fail needlessly; serve anyway
  // after that (calls fail with UNAVAILABLE until Redis is reachable, health says NOT_SERVING).
  absl::Time give_up = absl::Now() + options.redis_wait;
  while (!s->redis_->connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  if (!s->redis_->connected()) {
    Log(LogLevel::kWarning, "redis.not_reachable_yet", {{"addr", options.redis.address}});
  } else if (absl::Status st = redis::LoadLibrary(s->redis_.get(), lua::kLibrary); !st.ok()) {
    // A Lua error, missing ACL rights or a Redis without functions (before 7.0) fail the start,
    // not a customer's call. Redis gone meanwhile: the first call that needs the library loads it.
    if (!absl::IsUnavailable(st) && !absl::IsDeadlineExceeded(st)) {
      return absl::Status(st.code(), absl::StrCat("loading the Redis function library ",
                                                  lua::kLibrary.name, ": ", st.message()));
    }
    Log(LogLevel::kWarning, "redis.function_library_not_loaded",
        {{"library", std::string(lua::kLibrary.name)}, {"error", st.ToString()}});
  } else if (absl::StatusOr<int> folded = engagement::UpgradeJourneyKeys(s->redis_.get());
             !folded.ok()) {
    // Journey, activity and due-promise keys an earlier version wrote without buckets on a
    // single Redis (libs/engagement/journey_upgrade.h): left for the next start, which goes on
    // where this one stopped; until then GetJourneyStats, the retention sweep and the promise
    // scan do not see what they hold.
    Log(LogLevel::kWarning, "journey.upgrade_failed", {{"error", folded.status().ToString()}});
  }
  if (s->redis_->connected()) {
    // Alerts and audit entries of an earlier version, kept before buckets
    // (libs/engagement/alert_upgrade.h, libs/audit/audit_upgrade.h): what is left is moved by
    // the next start; until then ListAlerts and ListAuditEntries do not show it.
    if (absl::StatusOr<int> moved = engagement::UpgradeAlertKeys(s->redis_.get()); !moved.ok()) {
      Log(LogLevel::kWarning, "alerts.upgrade_failed", {{"error", moved.status().ToString()}});
    }
    if (absl::StatusOr<int> moved = audit::UpgradeAuditKeys(s->redis_.get()); !moved.ok()) {
      Log(LogLevel::kWarning, "audit.upgrade_failed", {{"error", moved.status().ToString()}});
    }
  }
  const privacy::Redactor* redactor = options.redactor;
  s->identity_store_ = std::make_unique<identity::IdentityStore>(
      s->redis_.get(), options.default_countries, redactor);
  const timeline::EngagementPolicy& policy = options.engagement_policy;
  s->timeline_store_ = std::make_unique<timeline::TimelineStore>(
      s->redis_.get(), s->identity_store_.get(), policy, redactor);
  s->context_store_ =
      std::make_unique<context::ContextStore>(s->redis_.get(), s->identity_store_.get(), policy);
  engagement::StoreContext ectx{s->redis_.get(), s->identity_store_.get(), policy, redactor};
  s->conversation_store_ = std::make_unique<engagement::ConversationStore>(ectx);
  s->case_store_ = std::make_unique<engagement::CaseStore>(ectx);
  s->alert_store_ = std::make_unique<engagement::AlertStore>(ectx);
  s->merge_engine_ =
      std::make_unique<merge::MergeEngine>(s->redis_.get(), options.merge_failpoint, redactor);
  s->privacy_store_ = std::make_unique<privacy::PrivacyStore>(
      s->redis_.get(), s->identity_store_.get(), options.erase_failpoint, redactor);
  s->suggester_ = std::make_unique<identity::MergeSuggester>(
      s->redis_.get(), s->identity_store_.get(), options.identity_policy.deny_list);

  s->audit_log_ = std::make_unique<audit::AuditLog>(s->redis_.get(), options.audit);
  std::function<void()> on_removed;
  if (options.aof_rewrite_interval > absl::ZeroDuration()) {
    s->aof_rewrites_ =
        std::make_unique<AofRewriteScheduler>(s->redis_.get(), options.aof_rewrite_interval);
    on_removed = [r = s->aof_rewrites_.get()] { r->Request(); };
  }

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (options.tls.enabled()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = TlsCredentials(options.tls);
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &s->port_);
  // Above Append's own 4 MiB limit, so an oversized batch gets our INVALID_ARGUMENT naming the
  // field rather than gRPC's generic RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(8 << 20);
  SetKeepalivePolicy(builder);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RequestIdInterceptorFactory>());
  interceptors.push_back(std::make_unique<ActorInterceptorFactory>(auth));
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>());
  interceptors.push_back(
      std::make_unique<AuditInterceptorFactory>(auth, s->audit_log_.get(), redactor));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (options.identity) {
    s->identity_service_ = std::make_unique<IdentityServiceImpl>(
        s->identity_store_.get(), s->merge_engine_.get(), s->suggester_.get(), auth,
        options.identity_policy, s->audit_log_.get());
    builder.RegisterService(s->identity_service_.get());
    s->service_names_.push_back("onestory.v1.IdentityService");
    // Erasure, export and redaction are served wherever identities are.
    s->privacy_service_ = std::make_unique<PrivacyServiceImpl>(s->privacy_store_.get(), auth,
                                                               s->audit_log_.get(), on_removed);
    builder.RegisterService(s->privacy_service_.get());
    s->service_names_.push_back("onestory.v1.PrivacyService");
  }
  if (options.timeline || options.engagement) {
    s->hub_ = std::make_unique<timeline::WatchHub>(s->redis_.get());
  }
  if (options.timeline) {
    s->timeline_service_ = std::make_unique<TimelineServiceImpl>(
        s->timeline_store_.get(), s->hub_.get(), auth, options.timeline_options);
    builder.RegisterService(s->timeline_service_.get());
    s->service_names_.push_back("onestory.v1.TimelineService");
  }
  if (options.context) {
    s->context_service_ = std::make_unique<ContextServiceImpl>(s->context_store_.get(), auth);
    builder.RegisterService(s->context_service_.get());
    s->service_names_.push_back("onestory.v1.ContextService");
  }
  if (options.engagement) {
    s->conversation_service_ =
        std::make_unique<ConversationServiceImpl>(s->conversation_store_.get(), auth);
    s->case_service_ = std::make_unique<CaseServiceImpl>(s->case_store_.get(), auth);
    s->alert_service_ =
        std::make_unique<AlertServiceImpl>(s->alert_store_.get(), s->hub_.get(), auth);
    builder.RegisterService(s->conversation_service_.get());
    builder.RegisterService(s->case_service_.get());
    builder.RegisterService(s->alert_service_.get());
    s->service_names_.push_back("onestory.v1.ConversationService");
    s->service_names_.push_back("onestory.v1.CaseService");
    s->service_names_.push_back("onestory.v1.AlertService");
  }
  // The audit log is read on every binary (each writes its own calls' entries).
  s->audit_service_ = std::make_unique<AuditServiceImpl>(s->audit_log_.get(), auth);
  builder.RegisterService(s->audit_service_.get());
  s->service_names_.push_back("onestory.v1.AuditService");
  // Reflection v1 lists what v1alpha lists: every service, health and reflection included.
  std::vector<std::string> listed = s->service_names_;
  listed.insert(listed.end(), {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                               "grpc.reflection.v1alpha.ServerReflection"});
  s->reflection_v1_ = std::make_unique<ReflectionV1Service>(std::move(listed));
  builder.RegisterService(s->reflection_v1_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  s->health_ = std::thread([srv = s.get()] { srv->WatchHealth(); });
  s->recovery_ = std::thread([srv = s.get()] { srv->RecoverMerges(); });
  s->outbox_sweeper_ = std::make_unique<outbox::Sweeper>(s->redis_.get());
  s->outbox_thread_ = std::thread([srv = s.get()] { srv->SweepOutboxes(); });
  if (options.engagement) s->promises_ = std::thread([srv = s.get()] { srv->ScanPromises(); });
  if (options.engagement_policy.retention != nullptr) {
    // Expiring an inactive customer is an erase like any other, recorded in the audit log.
    auto erase = [srv = s.get()](std::string tenant, std::string customer, Callback<bool> done) {
      v1::EraseCustomerRequest req;
      req.set_tenant(tenant);
      req.mutable_customer()->set_customer_id(customer);
      req.set_reason("retention: inactive");
      srv->privacy_store_->Erase(
          req, absl::Now() + absl::Seconds(30),
          [srv, tenant, customer,
           done = std::move(done)](absl::StatusOr<v1::EraseCustomerResponse> r) mutable {
            if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
              return done(r.status());
            }
            bool erased = r.ok() && !r->already_erased();
            if (erased && srv->aof_rewrites_) srv->aof_rewrites_->Request();
            if (erased) {
              v1::AuditEntry e;
              e.set_key_id("retention");
              e.set_method("onestory.v1.PrivacyService/EraseCustomer");
              e.set_customer_id(customer);
              e.set_code("OK");
              e.set_detail(absl::StrCat("reason=retention: inactive events=", r->events_erased(),
                                        " identifiers=", r->identifiers_erased()));
              srv->audit_log_->Record(tenant, std::move(e));
            }
            done(erased);
          });
    };
    s->sweeper_ =
        std::make_unique<retention::Sweeper>(s->redis_.get(), options.engagement_policy.retention,
                                             std::move(erase), options.retention_sweep);
    s->sweeper_thread_ = std::thread([srv = s.get()] { srv->SweepRetention(); });
  }
  if (!options.http_listen.empty()) {
    auto http = HttpGateway::Start({.listen = options.http_listen,
                                    .cors_origins = options.http_cors_origins,
                                    .max_streams = options.http_max_streams,
                                    .tls = {.cert = options.tls.cert_file,
                                            .key = options.tls.key_file,
                                            .client_ca = options.tls.client_ca_file},
                                    .heartbeat = options.http_heartbeat},
                                   s->server_->InProcessChannel(grpc::ChannelArguments()));
    if (!http.ok()) return http.status();
    s->http_ = *std::move(http);
  }
  if (!options.metrics_listen.empty()) {
    auto http =
        MetricsHttpServer::Start(options.metrics_listen, [srv = s.get()] { return srv->Ready(); });
    if (!http.ok()) return http.status();
    s->metrics_ = *std::move(http);
    s->RegisterGauges();
  }
  Log(LogLevel::kInfo, "server.listening",
      {{"addr", s->address()},
       {"services", absl::StrJoin(s->service_names_, ",")},
       {"redis", options.redis.address},
       {"functions", std::string(lua::kLibrary.name)},
       {"tls", !options.tls.enabled()               ? "off"
               : options.tls.client_ca_file.empty() ? "on"
                                                    : "mutual"},
       {"api_keys",
        auth->enabled() ? absl::StrCat(auth->key_count()) : "off (every call allowed)"}});
  return s;
}

void OneStoryServer::RegisterGauges() {
  auto& r = metrics::Registry::Global();
  r.AddGauge("onestory_build_info", "1, labelled with the version and the source revision built",
             [] { return 1.0; }, {{"version", ONESTORY_VERSION}, {"revision", ONESTORY_REVISION}});
  metrics::AddProcessMetrics(r);
  redis::Client* redis = redis_.get();
  r.AddGauge("onestory_redis_connected", "1 while at least one Redis command connection is up",
             [redis] { return redis->connected() ? 1.0 : 0.0; });
  r.AddGauge("onestory_redis_in_flight", "Redis commands sent and not yet answered",
             [redis] { return static_cast<double>(redis->in_flight()); });
  r.AddCounterFunction("onestory_redis_reconnects_total",
                       "Redis command connections re-established since start",
                       [redis] { return static_cast<double>(redis->reconnects()); });
  audit::AuditLog* audit = audit_log_.get();
  r.AddCounterFunction("onestory_audit_entries_written_total", "Audit entries written since start",
                       [audit] { return static_cast<double>(audit->recorded()); });
  r.AddCounterFunction(
      "onestory_audit_write_failures_total",
      "Audit entry writes Redis refused since start (held entries are written again)",
      [audit] { return static_cast<double>(audit->failures()); });
  r.AddGauge("onestory_audit_entries_held",
             "Audit entries held in memory for a retry while Redis refuses them",
             [audit] { return static_cast<double>(audit->pending()); });
  r.AddCounterFunction(
      "onestory_audit_entries_dropped_total",
      "Audit entries lost since start: the retry buffer was full, or the process stopped "
      "before Redis took them (each time also logged as an error)",
      [audit] { return static_cast<double>(audit->dropped()); });
  if (aof_rewrites_) {
    AofRewriteScheduler* aof = aof_rewrites_.get();
    r.AddCounterFunction("onestory_aof_rewrites_started_total",
                         "Append-only file rewrites started after erasures and redactions",
                         [aof] { return static_cast<double>(aof->started()); });
  }
  if (timeline_service_) {
    TimelineServiceImpl* t = timeline_service_.get();
    timeline::WatchHub* hub = hub_.get();
    r.AddGauge("onestory_watches_open", "Open Watch streams",
               [t] { return static_cast<double>(t->open_watches()); });
    r.AddGauge("onestory_watch_subscriber_connected",
               "1 while the pub/sub connection that wakes watchers is up",
               [hub] { return hub->subscriber_connected() ? 1.0 : 0.0; });
  }
}

absl::Status OneStoryServer::Ready() {
  if (stop_health_.HasBeenNotified()) return absl::UnavailableError("shutting down");
  if (!redis_->connected()) {
    return absl::UnavailableError(redis_->cluster()
                                      ? "redis cluster: a primary is not connected or the slot "
                                        "map does not cover every slot"
                                      : "redis: not connected");
  }
  std::string library(lua::kLibrary.name);
  std::vector<absl::StatusOr<redis::Reply>> primaries = redis_->CommandOnEveryPrimarySync(
      {"FUNCTION", "LIST", "LIBRARYNAME", library}, absl::Seconds(1));
  if (primaries.empty()) return absl::UnavailableError("redis: no primary answered");
  for (size_t i = 0; i < primaries.size(); ++i) {
    std::string which = primaries.size() > 1
                            ? absl::StrCat(" (primary ", i + 1, " of ", primaries.size(), ")")
                            : "";
    if (!primaries[i].ok()) {
      return absl::UnavailableError(
          absl::StrCat("redis", which, ": ", primaries[i].status().message()));
    }
    if (primaries[i]->elements.empty()) {
      return absl::UnavailableError(
          absl::StrCat("redis", which, ": the function library ", library, " is not loaded"));
    }
  }
  return absl::OkStatus();
}

std::string OneStoryServer::address() const {
  return absl::StrCat(options_.listen.substr(0, options_.listen.rfind(':')), ":", port_);
}

void OneStoryServer::WatchHealth() {
  grpc::HealthCheckServiceInterface* hc = server_->GetHealthCheckService();
  bool first = true;
  bool last = false;
  do {
    bool serving = redis_->connected();
    if (first || serving != last) {
      hc->SetServingStatus("", serving);
      for (const std::string& name : service_names_) hc->SetServingStatus(name, serving);
      if (!first || !serving) {
        Log(serving ? LogLevel::kInfo : LogLevel::kWarning, "health.changed",
            {{"serving", serving ? "true" : "false"}});
      }
      first = false;
      last = serving;
    }
  } while (!stop_health_.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
}

// Finishes merges and erasures a crash interrupted: all of them once at start-up, then those
// left alone for merge::kRecoveryAfter or privacy::kEraseRecoveryAfter (another server may still
// be running a younger one; every step is idempotent either way).
void OneStoryServer::RecoverMerges() {
  bool all = true;
  do {
    if (redis_->connected()) {
      absl::Notification done;
      merge_engine_->RecoverPending(
          all, absl::Now() + absl::Seconds(60), [&done](absl::StatusOr<int> n) {
            if (n.ok() && *n > 0) {
              Log(LogLevel::kInfo, "merge.recovered", {{"merges", absl::StrCat(*n)}});
            }
            done.Notify();
          });
      done.WaitForNotification();
      absl::Notification erased;
      privacy_store_->RecoverPending(
          absl::Now() + absl::Seconds(60),
          [&erased](absl::StatusOr<int> n) {
            if (n.ok() && *n > 0) {
              Log(LogLevel::kInfo, "erase.recovered", {{"erasures", absl::StrCat(*n)}});
            } else if (!n.ok()) {
              Log(LogLevel::kWarning, "erase.recovery_failed",
                  {{"reason", std::string(n.status().message())}});
            }
            erased.Notify();
          },
          all ? absl::ZeroDuration() : privacy::kEraseRecoveryAfter);
      erased.WaitForNotification();
      all = false;
    }
  } while (!stop_health_.WaitForNotificationWithTimeout(options_.merge_recovery_interval));
}

// Raises PROMISE_OVERDUE for promises whose time has passed. Every instance scans; the check and
// the raise are one script per promise, so each alert is raised once.
void OneStoryServer::ScanPromises() {
  do {
    if (redis_->connected()) {
      // A full batch means more may be due: scan again at once.
      for (int batches = 0; batches < 100; ++batches) {
        absl::Notification done;
        int checked = 0;
        alert_store_->ScanDuePromises(absl::Now() + absl::Seconds(10), [&](absl::StatusOr<int> n) {
          if (n.ok()) checked = *n;
          done.Notify();
        });
        done.WaitForNotification();
        if (checked < 100) break;
      }
    }
  } while (!stop_health_.WaitForNotificationWithTimeout(
      options_.engagement_policy.promise_scan_interval));
}

// Retention: every instance sweeps (each step is one idempotent script per customer); a pass
// that did not finish goes on where it stopped.
void OneStoryServer::SweepRetention() {
  while (!stop_health_.WaitForNotificationWithTimeout(options_.retention_sweep_interval)) {
    if (!redis_->connected()) continue;
    retention::Sweeper::Stats st = sweeper_->RunOnce(absl::Now() + absl::Seconds(30));
    if (st.events_trimmed > 0 || st.customers_expired > 0 || st.errors > 0) {
      Log(st.errors > 0 ? LogLevel::kWarning : LogLevel::kInfo, "retention.swept",
          {{"tenants", absl::StrCat(st.tenants)},
           {"customers", absl::StrCat(st.customers_checked)},
           {"events_trimmed", absl::StrCat(st.events_trimmed)},
           {"customers_expired", absl::StrCat(st.customers_expired)},
           {"errors", absl::StrCat(st.errors)}});
    }
  }
}

// Outboxes: every instance sweeps (draining is idempotent); an outbox is drained once its
// mark has stood still for a pass, so calls settling right now are left alone.
void OneStoryServer::SweepOutboxes() {
  while (!stop_health_.WaitForNotificationWithTimeout(options_.outbox_sweep_interval)) {
    if (!redis_->connected()) continue;
    outbox::Sweeper::Stats st = outbox_sweeper_->RunOnce(absl::Now() + absl::Seconds(20));
    if (st.drained > 0 || st.errors > 0) {
      Log(st.errors > 0 ? LogLevel::kWarning : LogLevel::kInfo, "outbox.swept",
          {{"marked", absl::StrCat(st.marked)},
           {"drained", absl::StrCat(st.drained)},
           {"entries", absl::StrCat(st.entries)},
           {"errors", absl::StrCat(st.errors)}});
    }
  }
}

void OneStoryServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;  // a failed Start has no server to stop
  shut_down_ = true;
  stop_health_.Notify();
  if (health_.joinable()) health_.join();
  if (recovery_.joinable()) recovery_.join();
  if (promises_.joinable()) promises_.join();
  if (sweeper_thread_.joinable()) sweeper_thread_.join();
  if (outbox_thread_.joinable()) outbox_thread_.join();
  server_->GetHealthCheckService()->SetServingStatus(false);
  // No HTTP request may call into the server once it shuts down.
  if (http_) http_->Stop();
  if (timeline_service_) timeline_service_->EndAllWatches();
  if (alert_service_) alert_service_->EndAllWatches();
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  server_->Wait();
}

OneStoryServer::~OneStoryServer() {
  Shutdown(absl::ZeroDuration());
  http_.reset();  // its calls went through server_, which has finished them
  if (metrics_) {
    for (const char* g :
         {"onestory_build_info", "onestory_redis_connected", "onestory_redis_in_flight",
          "onestory_redis_reconnects_total", "onestory_audit_entries_written_total",
          "onestory_audit_write_failures_total", "onestory_audit_entries_held",
          "onestory_audit_entries_dropped_total", "onestory_aof_rewrites_started_total",
          "onestory_watches_open", "onestory_watch_subscriber_connected"}) {
      metrics::Registry::Global().RemoveFunction(g);
    }
    metrics::RemoveProcessMetrics(metrics::Registry::Global());
    metrics_.reset();
  }
  server_.reset();
  identity_service_.reset();
  timeline_service_.reset();
  context_service_.reset();
  conversation_service_.reset();
  case_service_.reset();
  alert_service_.reset();
  audit_service_.reset();
  privacy_service_.reset();
  hub_.reset();
  aof_rewrites_.reset();
  audit_log_.reset();
  suggester_.reset();
  merge_engine_.reset();
  privacy_store_.reset();
  redis_.reset();
}

}  // namespace onestory::service
