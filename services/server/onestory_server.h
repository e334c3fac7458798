// OneStoryServer: the chosen services wired to one Redis client and served over gRPC, with
// health checking (following Redis reachability) and reflection. Used by every binary (through
// RunServer) and by the tests, which run it in-process on port 0.
//
//   ServerOptions opts;
//   opts.listen = "127.0.0.1:0";
//   opts.redis.address = "127.0.0.1:6379";
//   ASSIGN_OR_RETURN(auto server, OneStoryServer::Start(opts));
//   ... server->port() ...
//   server->Shutdown(absl::Seconds(10));
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/context/context_store.h"
#include "libs/engagement/alert_store.h"
#include "libs/engagement/case_store.h"
#include "libs/engagement/conversation_store.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/merge_suggester.h"
#include "libs/merge/merge_engine.h"
#include "libs/outbox/sweeper.h"
#include "libs/privacy/privacy_store.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/retention/sweeper.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/timeline_store.h"
#include "libs/timeline/watch_hub.h"
#include "services/alert/alert_service.h"
#include "services/audit/audit_service.h"
#include "services/case/case_service.h"
#include "services/common/aof_rewrite.h"
#include "services/common/auth.h"
#include "services/common/http_gateway.h"
#include "services/common/metrics_http.h"
#include "services/common/reflection_v1.h"
#include "services/context/context_service.h"
#include "services/conversation/conversation_service.h"
#include "services/identity/identity_service.h"
#include "services/privacy/privacy_service.h"
#include "services/timeline/timeline_service.h"

namespace onestory::service {

// TLS for the gRPC port: PEM files. With client_ca_file, clients must present a certificate
// signed by it (mutual TLS).
struct TlsOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool enabled() const { return !cert_file.empty(); }
};

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Serve the unary RPCs as HTTP/JSON (services/common/http_gateway.h) on host:port; empty: off.
  std::string http_listen;
  std::vector<std::string> http_cors_origins;         // HttpGateway::Options::cors_origins
  int http_max_streams = 1000;                        // HttpGateway::Options::max_streams
  absl::Duration http_heartbeat = absl::Seconds(15);  // HttpGateway::Options::heartbeat
  TlsOptions tls;
  // Who may call. Null: every call is allowed (Authenticator::AllowAll) — for in-process tests
  // of everything but authentication; the binaries always set it.
  std::shared_ptr<Authenticator> auth;
  audit::AuditLog::Options audit;
  redis::Options redis;
  bool identity = true;
  bool timeline = true;
  bool context = true;
  bool engagement = true;  // ConversationService, CaseService, AlertService
  TimelineServiceOptions timeline_options;
  IdentityPolicy identity_policy;
  // Each tenant's default country for phone numbers in national format (--default_country).
  identity::DefaultCountries default_countries;
  timeline::EngagementPolicy engagement_policy;
  // The masking of free text before it is stored (--redact_patterns_file), handed to every
  // store, the merge engine and the audit log's writers. Null: card numbers only. Not owned;
  // must outlive the server.
  const privacy::Redactor* redactor = nullptr;
  // How often unfinished merges older than merge::kRecoveryAfter, and erasures older than
  // privacy::kEraseRecoveryAfter, are finished (every pending one is finished once at start-up).
  absl::Duration merge_recovery_interval = absl::Seconds(5);
  merge::MergeEngine::Failpoint merge_failpoint;     // tests only
  privacy::PrivacyStore::Failpoint erase_failpoint;  // tests only
  // Serve Prometheus metrics at http://<metrics_listen>/metrics; empty: no metrics endpoint.
  std::string metrics_listen;
  // How often the retention sweep runs (with engagement_policy.retention set): timelines no
  // append trims are trimmed, inactive customers erased.
  absl::Duration retention_sweep_interval = absl::Minutes(1);
  retention::Sweeper::Options retention_sweep;  // tests move its clock
  // How often outbox effects a crashed or failed drain left are applied (libs/outbox/sweeper.h):
  // such an effect waits up to two of these.
  absl::Duration outbox_sweep_interval = absl::Seconds(5);
  // Positive: after every erase and redaction (calls and the retention sweep), Redis rewrites
  // its append-only file, at most once per this interval (AofRewriteScheduler), so removed text
  // leaves the disk. Only for a Redis whose files OneStory owns (the embedded default); zero:
  // never.
  absl::Duration aof_rewrite_interval = absl::ZeroDuration();
  // How long Start waits for a first Redis connection before serving anyway.
  absl::Duration redis_wait = absl::Seconds(2);
};

class OneStoryServer {
 public:
  static absl::StatusOr<std::unique_ptr<OneStoryServer>> Start(ServerOptions options);
  ~OneStoryServer();  // Shutdown(0) when not shut down yet

  int port() const { return port_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  int http_port() const { return http_ ? http_->port() : 0; }
  // What GET /readyz answers: OK when Redis (every primary of a cluster) answers and has the
  // function library loaded, and the server is not shutting down. Blocks up to a second.
  absl::Status Ready();
  std::string address() const;  // host:port as bound
  redis::Client* redis() { return redis_.get(); }
  audit::AuditLog* audit_log() { return audit_log_.get(); }
  Authenticator* auth() { return options_.auth.get(); }
  merge::MergeEngine* merge_engine() { return merge_engine_.get(); }
  privacy::PrivacyStore* privacy_store() { return privacy_store_.get(); }
  TimelineServiceImpl* timeline_service() { return timeline_service_.get(); }
  AofRewriteScheduler* aof_rewrites() { return aof_rewrites_.get(); }  // null when off

  // Health NOT_SERVING, ends every Watch with UNAVAILABLE, then lets in-flight calls finish
  // for up to `grace` before cancelling them.
  void Shutdown(absl::Duration grace);

 private:
  OneStoryServer() = default;
  void WatchHealth();
  void RecoverMerges();
  void ScanPromises();
  void SweepRetention();
  void SweepOutboxes();
  void RegisterGauges();

  ServerOptions options_;
  std::vector<std::string> service_names_;  // full names, for per-service health
  int port_ = 0;
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<identity::IdentityStore> identity_store_;
  std::unique_ptr<timeline::TimelineStore> timeline_store_;
  std::unique_ptr<context::ContextStore> context_store_;
  std::unique_ptr<merge::MergeEngine> merge_engine_;
  std::unique_ptr<identity::MergeSuggester> suggester_;
  std::unique_ptr<privacy::PrivacyStore> privacy_store_;
  std::unique_ptr<engagement::ConversationStore> conversation_store_;
  std::unique_ptr<engagement::CaseStore> case_store_;
  std::unique_ptr<engagement::AlertStore> alert_store_;
  std::unique_ptr<timeline::WatchHub> hub_;
  std::unique_ptr<audit::AuditLog> audit_log_;
  std::unique_ptr<AofRewriteScheduler> aof_rewrites_;
  std::unique_ptr<AuditServiceImpl> audit_service_;
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  std::unique_ptr<PrivacyServiceImpl> privacy_service_;
  std::unique_ptr<IdentityServiceImpl> identity_service_;
  std::unique_ptr<TimelineServiceImpl> timeline_service_;
  std::unique_ptr<ContextServiceImpl> context_service_;
  std::unique_ptr<ConversationServiceImpl> conversation_service_;
  std::unique_ptr<CaseServiceImpl> case_service_;
  std::unique_ptr<AlertServiceImpl> alert_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  std::unique_ptr<HttpGateway> http_;
  absl::Notification stop_health_;
  std::thread health_;
  std::thread recovery_;
  std::thread promises_;  // the overdue-promise scan, with the engagement services
  std::unique_ptr<retention::Sweeper> sweeper_;
  std::thread sweeper_thread_;  // with a retention policy
  std::unique_ptr<outbox::Sweeper> outbox_sweeper_;
  std::thread outbox_thread_;
  bool shut_down_ = false;
};

}  // namespace onestory::service
