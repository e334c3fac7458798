#include "services/server/server_runner.h"

#include <fcntl.h>
#include <grpc/support/log.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/auth/api_keys.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/embedded/embedded_redis.h"
#include "libs/outbox/outbox.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/redis/cluster_router.h"
#include "libs/redis/tls.h"
#include "libs/retention/retention.h"
#include "libs/steps/steps.h"
#include "libs/timeline/event_effects.h"
#include "services/server/onestory_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address (host:port; port 0 picks a free port). Use 0.0.0.0:50051 to "
          "accept remote clients.");
ABSL_FLAG(std::string, redis, "",
          "Redis address: host:port, unix:/path or /path. Empty (onestory-server only): start "
          "and supervise a local redis-server under --data_dir.");
ABSL_FLAG(std::string, redis_cluster, "",
          "Redis Cluster seed nodes: host:port[,host:port...]. The client reads the slot map "
          "from them and routes every call to its slot's primary. Not with --redis.");
ABSL_FLAG(std::string, redis_user, "", "Redis ACL user (with --redis_password).");
ABSL_FLAG(std::string, redis_password, "", "Redis password; AUTH is sent when set.");
ABSL_FLAG(bool, redis_tls, false,
          "Connect to Redis over TLS: --redis is redis-server's --tls-port (a cluster's nodes run "
          "with tls-cluster yes). Redis's certificate must chain to --redis_tls_ca and name "
          "--redis_tls_server_name (default: the host connected to).");
ABSL_FLAG(std::string, redis_tls_ca, "",
          "With --redis_tls: the CA certificates (PEM) that sign Redis's certificate. Empty: the "
          "system's CAs.");
ABSL_FLAG(std::string, redis_tls_cert, "",
          "With --redis_tls: a client certificate (PEM chain), sent when Redis asks for one "
          "(tls-auth-clients). With --redis_tls_key.");
ABSL_FLAG(std::string, redis_tls_key, "", "With --redis_tls_cert: its private key (PEM).");
ABSL_FLAG(std::string, redis_tls_server_name, "",
          "With --redis_tls: the name Redis's certificate must carry (also sent as SNI). Empty: "
          "the host of each address connected to.");
ABSL_FLAG(int, redis_connections, 2, "Pipelined Redis command connections.");
ABSL_FLAG(int, redis_connect_timeout_ms, 1000, "Redis connect timeout.");
ABSL_FLAG(int, redis_command_timeout_ms, 5000,
          "A Redis command unanswered this long fails with UNAVAILABLE and its connection is "
          "reopened.");
ABSL_FLAG(int, redis_wait_replicas, 0,
          "Durability: every write waits (Redis WAIT) until this many replicas acknowledge it; "
          "when fewer do within --redis_wait_timeout_ms the call fails with UNAVAILABLE (the "
          "write is kept on the primary; retries with the same ids store nothing twice). 0: off. "
          "Needs --redis or --redis_cluster (the embedded redis-server has no replicas).");
ABSL_FLAG(int, redis_wait_timeout_ms, 1000,
          "With --redis_wait_replicas: how long a write waits for its replicas (or the call's "
          "deadline, if sooner); less than --redis_command_timeout_ms, of which at most half "
          "is used.");
ABSL_FLAG(std::string, data_dir, "onestory-data",
          "Embedded default: where redis-server keeps its data and socket.");
ABSL_FLAG(std::string, appendfsync, "everysec",
          "Embedded default: Redis appendfsync (always, everysec or no).");
ABSL_FLAG(int, watch_max_lag_ms, 10000,
          "A Watch that falls this far behind live is ended with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, shutdown_grace_ms, 10000,
          "On SIGTERM, how long in-flight calls may take to finish.");
ABSL_FLAG(std::string, port_file, "",
          "Write the bound gRPC port to this file once listening (for scripts and tests).");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(std::string, log_format, "text",
          "text (key=value lines) or json (one JSON object per line); gRPC's own lines too.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 0.0.0.0:9464); empty: "
          "off.");
ABSL_FLAG(std::string, http_listen, "",
          "Serve the unary RPCs as HTTP/JSON (Connect protocol) and the live streams as "
          "Server-Sent Events on HOST:PORT (port 0 picks one); empty: off.");
ABSL_FLAG(int, http_max_streams, 1000,
          "Server-Sent Events streams open at once on the HTTP listener (a thread each), "
          "1-100000; more are refused with 503.");
ABSL_FLAG(int, http_heartbeat_ms, 15000,
          "A comment line on a Server-Sent Events stream after this long without a message, so "
          "proxies keep it open; 100-3600000.");
ABSL_FLAG(std::string, http_cors_origins, "",
          "Comma-separated web origins (https://console.example.com) whose pages may call the "
          "HTTP listener (CORS); requests from other origins are refused. Empty: none.");
ABSL_FLAG(std::string, http_port_file, "",
          "Write the bound HTTP port to this file once listening (with --http_listen).");
ABSL_FLAG(std::string, metrics_port_file, "",
          "Write the bound metrics port to this file once listening (with --metrics_listen "
          "HOST:0).");
ABSL_FLAG(std::string, auto_merge_types, "",
          "Identifier types trusted to merge two customers on their own when linked with "
          "verification ONE_TIME_CODE or AUTHENTICATED, per tenant: "
          "\"acme=app_user_id+crm_id;*=app_user_id\" ('*': every tenant). Empty: never.");
ABSL_FLAG(
    std::string, merge_deny_list, "",
    "Shared identifiers that never merge customers nor suggest a merge, as "
    "<type>:<value> with a trailing * for a prefix: \"device_id:kiosk-*,phone:18005550100\".");

ABSL_FLAG(std::string, default_country, "",
          "The country of phone numbers written without '+' or an international prefix, per "
          "tenant: \"acme=US;*=GB\" ('*': every tenant not named). Empty: none, and such a "
          "number is refused unless it starts with its country code (README 'Phone numbers').");

ABSL_FLAG(int, repeat_contact_days, 7,
          "A contact within this many days after a case was resolved still counts as a repeat "
          "contact about it.");
ABSL_FLAG(int, alert_repeat_contacts, 3,
          "Raise REPEAT_CONTACT on a customer's Nth contact about one case within 7 days.");
ABSL_FLAG(int, alert_negative_streak, 3,
          "Raise NEGATIVE_STREAK after this many negative interactions in a row.");
ABSL_FLAG(int, promise_scan_interval_ms, 1000,
          "How often each instance looks for promises that became overdue.");

ABSL_FLAG(std::string, api_keys_file, "",
          "API keys (id, tenant, scopes, SHA-256 of the key; see README 'API keys'). Required "
          "unless OneStory runs on its embedded Redis, which then makes a key on first start "
          "(<data_dir>/api_keys, the key itself in <data_dir>/api_key). Reloaded on SIGHUP.");
ABSL_FLAG(std::string, agent_token_keys_file, "",
          "Keys that sign agent tokens (short-lived JWTs for browser consoles and bots): lines "
          "'<tenant> <kid> HS256 <base64url secret>' or '<tenant> <kid> ES256|RS256 <PEM public "
          "key path>'; see README 'Agent tokens'. Empty: agent tokens are refused. Reloaded on "
          "SIGHUP.");
ABSL_FLAG(std::string, embedded_tenant, "demo",
          "The tenant of the key the embedded default makes on first start.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for the gRPC port and the HTTP listener; enables TLS on both.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).");
ABSL_FLAG(int, audit_retention_days, 400, "Audit log entries older than this are trimmed.");
ABSL_FLAG(int64_t, audit_max_entries, 1000000,
          "Each tenant's audit log keeps about its newest this many entries (and none older "
          "than --audit_retention_days).");
ABSL_FLAG(double, api_key_rate, 0,
          "Calls per second each API key may make to this server instance, unless its line in "
          "the key file sets rate=; 0 (the default): no limit for such keys. Over it: "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, api_key_burst, 400,
          "Calls an API key may make at once after a quiet spell, unless its line sets burst= "
          "(a line with only rate= gets twice its rate).");
ABSL_FLAG(int64_t, redis_maxmemory_mb, 0,
          "Embedded default: Redis maxmemory in MiB (policy noeviction: at the limit writes "
          "fail with RESOURCE_EXHAUSTED). 0: half of physical memory.");
ABSL_FLAG(int, aof_rewrite_interval_s, 60,
          "Embedded default: after an erase or redaction Redis rewrites its append-only file "
          "(so removed text leaves the disk), at most once per this many seconds; 0: never.");
ABSL_FLAG(std::string, retention_file, "",
          "Retention per tenant: '<tenant or *> max_age=90d max_events=10000 "
          "inactive_after=730d' per line (libs/retention/README.md). Empty: max_events=100000 "
          "for every tenant, nothing else. Reloaded on SIGHUP.");
ABSL_FLAG(int, retention_sweep_interval_ms, 60000,
          "How often the retention sweep trims idle timelines and erases inactive customers.");
ABSL_FLAG(int, outbox_sweep_interval_ms, 5000,
          "How often effects on alerts, journey counters and activity that a crashed or failed "
          "call left unapplied are applied (they wait up to two intervals).");
ABSL_FLAG(std::string, redact_patterns_file, "",
          "Patterns masked in every stored event's summary and body, besides payment card "
          "numbers (always masked): one '<name> <RE2 regex>' per line; a match becomes [<name>].");

namespace onestory::service {
namespace {

// --redis_tls and its files: the TLS context every Redis connection uses, or none.
absl::Status SetRedisTls(redis::Options& options) {
  redis::TlsOptions tls{absl::GetFlag(FLAGS_redis_tls_ca), absl::GetFlag(FLAGS_redis_tls_cert),
                        absl::GetFlag(FLAGS_redis_tls_key),
                        absl::GetFlag(FLAGS_redis_tls_server_name)};
  if (!absl::GetFlag(FLAGS_redis_tls)) {
    if (!tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() ||
        !tls.server_name.empty()) {
      return absl::InvalidArgumentError(
          "--redis_tls_ca, --redis_tls_cert, --redis_tls_key and --redis_tls_server_name need "
          "--redis_tls");
    }
    return absl::OkStatus();
  }
  if (absl::StartsWith(options.address, "unix:") || absl::StartsWith(options.address, "/")) {
    return absl::InvalidArgumentError("--redis_tls: --redis must be host:port (TLS is over TCP)");
  }
  absl::StatusOr<std::shared_ptr<const redis::TlsContext>> context = redis::TlsContext::Create(tls);
  if (!context.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--redis_tls_*: ", context.status().message()));
  }
  options.tls = *std::move(context);
  return absl::OkStatus();
}

constexpr const char* kFlagNames[] = {
    "listen",
    "redis",
    "redis_cluster",
    "redis_user",
    "redis_password",
    "redis_tls",
    "redis_tls_ca",
    "redis_tls_cert",
    "redis_tls_key",
    "redis_tls_server_name",
    "redis_connections",
    "redis_connect_timeout_ms",
    "redis_command_timeout_ms",
    "redis_wait_replicas",
    "redis_wait_timeout_ms",
    "data_dir",
    "appendfsync",
    "watch_max_lag_ms",
    "shutdown_grace_ms",
    "port_file",
    "log_level",
    "log_format",
    "metrics_listen",
    "metrics_port_file",
    "http_listen",
    "http_port_file",
    "http_cors_origins",
    "http_max_streams",
    "http_heartbeat_ms",
    "auto_merge_types",
    "merge_deny_list",
    "default_country",
    "repeat_contact_days",
    "alert_repeat_contacts",
    "alert_negative_streak",
    "promise_scan_interval_ms",
    "api_keys_file",
    "agent_token_keys_file",
    "embedded_tenant",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "audit_retention_days",
    "audit_max_entries",
    "api_key_rate",
    "api_key_burst",
    "redis_maxmemory_mb",
    "aof_rewrite_interval_s",
    "redact_patterns_file",
    "retention_file",
    "retention_sweep_interval_ms",
    "outbox_sweep_interval_ms",
};

// argv with --flag=value from ONESTORY_<FLAG> variables placed before the command line's own
// flags, so the command line wins.
std::vector<char*> ArgsWithEnvironment(int argc, char** argv, std::vector<std::string>* store) {
  for (const char* name : kFlagNames) {
    std::string var = absl::StrCat("ONESTORY_", absl::AsciiStrToUpper(name));
    if (const char* value = std::getenv(var.c_str())) {
      store->push_back(absl::StrCat("--", name, "=", value));
    }
  }
  std::vector<char*> args = {argv[0]};
  for (auto& s : *store) args.push_back(s.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  return args;
}

int Fail(absl::string_view event, const absl::Status& st) {
  Log(LogLevel::kError, event, {{"error", std::string(st.message())}});
  return 1;
}

absl::Status WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp));
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = fsync(fd) == 0 && ok;
  ok = close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

// The embedded default's key file: made on first start with one key of every scope for
// --embedded_tenant; the key itself is kept beside it (mode 0600) and printed at every start,
// so a developer can call the server at once.
absl::StatusOr<std::string> EmbeddedKeysFile(const std::string& data_dir) {
  std::string keys_path = data_dir + "/api_keys";
  std::string key_path = data_dir + "/api_key";
  if (access(keys_path.c_str(), F_OK) != 0) {
    std::string tenant = absl::GetFlag(FLAGS_embedded_tenant);
    if (absl::Status st = ValidateTenant(tenant); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--embedded_tenant: ", st.message()));
    }
    std::string key = auth::GenerateKey();
    if (absl::Status st = WriteFile(key_path, key + "\n", 0600); !st.ok()) return st;
    std::string line = absl::StrCat(
        "# Made by onestory-server on first start; the key is in ", key_path, "\nembedded ", tenant,
        " ", auth::ScopeSet::All().ToString(), " sha256:", auth::Sha256Hex(key), "\n");
    if (absl::Status st = WriteFile(keys_path, line, 0600); !st.ok()) return st;
    Log(LogLevel::kInfo, "api_key.generated", {{"file", keys_path}, {"tenant", tenant}});
  }
  std::ifstream in(key_path);
  std::string key;
  if (in >> key) {
    // Printed on stdout, not in the log: it is a secret.
    std::cout << "OneStory API key (all scopes): " << key << "\n"
              << "  send it as gRPC metadata \"authorization: Bearer " << key << "\"\n"
              << std::flush;
  }
  return keys_path;
}

// gRPC's own lines (gpr_log: transport errors, a malformed HTTP/2 request, ...) in OneStory's
// format on the same stderr, as event=grpc.log. gRPC drops those under GRPC_VERBOSITY (ERROR
// unless set) before they get here.
void LogGrpcLine(gpr_log_func_args* args) {
  LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                   : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                             : LogLevel::kDebug;
  absl::string_view file = args->file != nullptr ? args->file : "";
  file = file.substr(file.rfind('/') == absl::string_view::npos ? 0 : file.rfind('/') + 1);
  Log(level, "grpc.log",
      {{"source", absl::StrCat(file, ":", args->line)},
       {"message", args->message != nullptr ? args->message : ""}});
}

// Writes port to path (nothing when path is empty): whole, then renamed, so a reader never sees
// a partial file.
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int RunServer(int argc, char** argv, ServiceSet services) {
  absl::SetProgramUsageMessage(
      "OneStory gRPC server. Flags may also be given as ONESTORY_<FLAG> environment variables.");
  std::vector<std::string> env_args;
  std::vector<char*> args = ArgsWithEnvironment(argc, argv, &env_args);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());

  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail("config.invalid", absl::InvalidArgumentError("--log_level: unknown level"));
  }
  SetLogLevel(level);
  LogFormat format;
  if (!ParseLogFormat(absl::GetFlag(FLAGS_log_format), &format)) {
    return Fail("config.invalid", absl::InvalidArgumentError("--log_format: text or json"));
  }
  SetLogFormat(format);
  gpr_set_log_function(LogGrpcLine);
  // Debian's Abseil is built with mutex deadlock detection on, which costs a graph update on
  // every lock; the tests keep it, a serving process does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::GetFlag(FLAGS_redis_connections) < 1 || absl::GetFlag(FLAGS_redis_connections) > 64) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--redis_connections: between 1 and 64"));
  }
  if (std::string f = absl::GetFlag(FLAGS_appendfsync);
      f != "always" && f != "everysec" && f != "no") {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--appendfsync: always, everysec or no"));
  }
  if (absl::GetFlag(FLAGS_watch_max_lag_ms) <= 0 ||
      absl::GetFlag(FLAGS_redis_command_timeout_ms) <= 0 ||
      absl::GetFlag(FLAGS_redis_connect_timeout_ms) <= 0) {
    return Fail("config.invalid", absl::InvalidArgumentError(
                                      "--watch_max_lag_ms and the redis timeouts must be > 0"));
  }
  if (int n = absl::GetFlag(FLAGS_redis_wait_replicas); n < 0 || n > 16) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--redis_wait_replicas: between 0 (off) and 16"));
  }
  if (int ms = absl::GetFlag(FLAGS_redis_wait_timeout_ms);
      absl::GetFlag(FLAGS_redis_wait_replicas) > 0 &&
      (ms <= 0 || ms >= absl::GetFlag(FLAGS_redis_command_timeout_ms))) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--redis_wait_timeout_ms: more than 0 and less than "
                                           "--redis_command_timeout_ms"));
  }

  // Signals are taken by sigwait below; every thread created from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<embedded::EmbeddedRedis> embedded_redis;
  redis::Options redis_options;
  redis_options.address = absl::GetFlag(FLAGS_redis);
  redis_options.user = absl::GetFlag(FLAGS_redis_user);
  redis_options.password = absl::GetFlag(FLAGS_redis_password);
  redis_options.connections = absl::GetFlag(FLAGS_redis_connections);
  redis_options.connect_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_redis_connect_timeout_ms));
  redis_options.command_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_redis_command_timeout_ms));
  redis_options.wait_replicas = absl::GetFlag(FLAGS_redis_wait_replicas);
  redis_options.wait_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_redis_wait_timeout_ms));
  if (absl::Status st = SetRedisTls(redis_options); !st.ok()) return Fail("config.invalid", st);
  if (std::string cluster = absl::GetFlag(FLAGS_redis_cluster); !cluster.empty()) {
    if (!redis_options.address.empty()) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError("--redis and --redis_cluster: give one, not both "
                                             "(--redis_cluster for a Redis Cluster's seed nodes)"));
    }
    absl::StatusOr<std::vector<std::string>> seeds = redis::ParseClusterSeeds(cluster);
    if (!seeds.ok()) return Fail("config.invalid", seeds.status());
    redis_options.cluster_seeds = *std::move(seeds);
    // Logs name the first seed as "the" Redis (every call is routed by slot).
    redis_options.address = redis_options.cluster_seeds.front();
  } else if (redis_options.address.empty()) {
    if (redis_options.tls != nullptr) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError(
                      "--redis_tls: the embedded redis-server is reached over a local socket; "
                      "give --redis or --redis_cluster"));
    }
    if (redis_options.wait_replicas > 0) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError(
                      "--redis_wait_replicas: the embedded redis-server has no replicas; give "
                      "--redis or --redis_cluster"));
    }
    if (!services.allow_embedded) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError("--redis is required (host:port or unix:/path)"));
    }
    embedded::EmbeddedRedisOptions eopts;
    eopts.data_dir = absl::GetFlag(FLAGS_data_dir);
    eopts.appendfsync = absl::GetFlag(FLAGS_appendfsync);
    int64_t maxmemory_mb = absl::GetFlag(FLAGS_redis_maxmemory_mb);
    if (maxmemory_mb < 0 || maxmemory_mb > (int64_t{1} << 30)) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError("--redis_maxmemory_mb: 0 (half of physical memory) or "
                                             "a size in MiB up to 2^30"));
    }
    eopts.maxmemory_bytes = static_cast<uint64_t>(maxmemory_mb) << 20;
    auto started = embedded::EmbeddedRedis::Start(eopts);
    if (!started.ok()) return Fail("embedded_redis.start_failed", started.status());
    embedded_redis = *std::move(started);
    redis_options.address = embedded_redis->address();
  }

  ServerOptions options;
  std::string keys_file = absl::GetFlag(FLAGS_api_keys_file);
  if (keys_file.empty()) {
    if (embedded_redis == nullptr) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError(
                      "--api_keys_file is required: every call needs an API key (make one with "
                      "tools/apikey.py; README 'API keys')"));
    }
    absl::StatusOr<std::string> made = EmbeddedKeysFile(absl::GetFlag(FLAGS_data_dir));
    if (!made.ok()) return Fail("api_keys.invalid", made.status());
    keys_file = *made;
  }
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::FromFile(keys_file);
  if (!auth.ok()) return Fail("api_keys.invalid", auth.status());
  options.auth = *std::move(auth);
  if (std::string path = absl::GetFlag(FLAGS_agent_token_keys_file); !path.empty()) {
    if (absl::Status st = options.auth->SetAgentTokenKeysFile(path); !st.ok()) {
      return Fail("agent_token_keys.invalid", st);
    }
  }
  double key_rate = absl::GetFlag(FLAGS_api_key_rate);
  int key_burst = absl::GetFlag(FLAGS_api_key_burst);
  if (!(key_rate >= 0 && key_rate <= 1000000) || key_burst < 1 || key_burst > 1000000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--api_key_rate: 0 (unlimited) to 1000000 calls/s; "
                                           "--api_key_burst: 1 to 1000000 calls"));
  }
  options.auth->SetDefaultRateLimit({key_rate, static_cast<double>(key_burst)});
  if (options.auth->key_count() == 0) {
    Log(LogLevel::kWarning, "api_keys.empty", {{"file", keys_file}});
  }
  // Lives for the whole process: every append reads it.
  static const privacy::Redactor* redactor = nullptr;
  if (std::string path = absl::GetFlag(FLAGS_redact_patterns_file); !path.empty()) {
    std::ifstream in(path);
    if (!in) {
      return Fail("config.invalid", absl::InvalidArgumentError(absl::StrCat(
                                        "--redact_patterns_file: cannot read ", path)));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto patterns = privacy::Redactor::ParsePatternFile(text.str());
    absl::StatusOr<privacy::Redactor> made =
        patterns.ok() ? privacy::Redactor::Create(*std::move(patterns))
                      : absl::StatusOr<privacy::Redactor>(patterns.status());
    if (!made.ok()) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError(absl::StrCat("--redact_patterns_file ", path, ": ",
                                                          made.status().message())));
    }
    redactor = new privacy::Redactor(*std::move(made));
  }
  options.redactor = redactor;
  // Lives for the whole process: every append reads it.
  static retention::Policy* const retention_policy = new retention::Policy();
  if (std::string path = absl::GetFlag(FLAGS_retention_file); !path.empty()) {
    if (absl::Status st = retention_policy->Load(path); !st.ok()) {
      return Fail("config.invalid", absl::InvalidArgumentError(absl::StrCat(
                                        "--retention_file ", path, ": ", st.message())));
    }
  }
  options.engagement_policy.retention = retention_policy;
  int sweep_ms = absl::GetFlag(FLAGS_retention_sweep_interval_ms);
  if (sweep_ms < 100 || sweep_ms > 86400000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--retention_sweep_interval_ms: 100 to 86400000"));
  }
  options.retention_sweep_interval = absl::Milliseconds(sweep_ms);
  int outbox_ms = absl::GetFlag(FLAGS_outbox_sweep_interval_ms);
  if (outbox_ms < 100 || outbox_ms > 3600000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--outbox_sweep_interval_ms: 100 to 3600000"));
  }
  options.outbox_sweep_interval = absl::Milliseconds(outbox_ms);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  if (options.tls.cert_file.empty() != options.tls.key_file.empty() ||
      (!options.tls.client_ca_file.empty() && options.tls.cert_file.empty())) {
    return Fail("config.invalid",
                absl::InvalidArgumentError(
                    "--tls_cert and --tls_key go together; --tls_client_ca needs them"));
  }
  int audit_days = absl::GetFlag(FLAGS_audit_retention_days);
  if (audit_days < 1 || audit_days > 36500) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--audit_retention_days: between 1 and 36500"));
  }
  options.audit.retention = absl::Hours(24 * audit_days);
  int64_t audit_max = absl::GetFlag(FLAGS_audit_max_entries);
  if (audit_max < 1000 || audit_max > 1000000000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--audit_max_entries: between 1000 and 1000000000"));
  }
  options.audit.max_entries = audit_max;
  int aof_interval_s = absl::GetFlag(FLAGS_aof_rewrite_interval_s);
  if (aof_interval_s < 0 || aof_interval_s > 86400) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--aof_rewrite_interval_s: 0 (never) to 86400"));
  }
  // Only the embedded Redis's files are OneStory's to rewrite (README: what an operator of
  // another Redis does instead).
  if (embedded_redis != nullptr) options.aof_rewrite_interval = absl::Seconds(aof_interval_s);
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  for (absl::string_view o :
       absl::StrSplit(absl::GetFlag(FLAGS_http_cors_origins), ',', absl::SkipWhitespace())) {
    o = absl::StripAsciiWhitespace(o);
    if (!(absl::StartsWith(o, "https://") || absl::StartsWith(o, "http://")) ||
        absl::EndsWith(o, "/") || absl::StrContains(o, "*")) {
      return Fail("config.invalid",
                  absl::InvalidArgumentError(absl::StrCat(
                      "--http_cors_origins: '", o,
                      "' is not an origin (scheme://host[:port], no path, no wildcard)")));
    }
    options.http_cors_origins.emplace_back(o);
  }
  options.http_max_streams = absl::GetFlag(FLAGS_http_max_streams);
  int heartbeat_ms = absl::GetFlag(FLAGS_http_heartbeat_ms);
  if (options.http_max_streams < 1 || options.http_max_streams > 100000 || heartbeat_ms < 100 ||
      heartbeat_ms > 3600000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError(
                    "--http_max_streams must be 1-100000, --http_heartbeat_ms 100-3600000"));
  }
  options.http_heartbeat = absl::Milliseconds(heartbeat_ms);
  if (options.http_listen.empty() && !absl::GetFlag(FLAGS_http_port_file).empty()) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--http_port_file: needs --http_listen"));
  }
  if (options.metrics_listen.empty() && !absl::GetFlag(FLAGS_metrics_port_file).empty()) {
    return Fail("config.invalid",
                absl::InvalidArgumentError("--metrics_port_file: needs --metrics_listen"));
  }
  options.redis = redis_options;
  options.identity = services.identity;
  options.timeline = services.timeline;
  options.context = services.context;
  options.engagement = services.engagement;
  int repeat_days = absl::GetFlag(FLAGS_repeat_contact_days);
  int repeat_alert = absl::GetFlag(FLAGS_alert_repeat_contacts);
  int streak_alert = absl::GetFlag(FLAGS_alert_negative_streak);
  int scan_ms = absl::GetFlag(FLAGS_promise_scan_interval_ms);
  if (repeat_days < 0 || repeat_days > 365 || repeat_alert < 2 || repeat_alert > 100 ||
      streak_alert < 1 || streak_alert > 100 || scan_ms < 10 || scan_ms > 3600000) {
    return Fail("config.invalid",
                absl::InvalidArgumentError(
                    "--repeat_contact_days must be 0-365, --alert_repeat_contacts 2-100, "
                    "--alert_negative_streak 1-100, --promise_scan_interval_ms 10-3600000"));
  }
  options.engagement_policy.repeat_window = absl::Hours(24 * repeat_days);
  options.engagement_policy.alert_repeat_contacts = repeat_alert;
  options.engagement_policy.alert_negative_streak = streak_alert;
  options.engagement_policy.promise_scan_interval = absl::Milliseconds(scan_ms);
  options.timeline_options.watch_max_lag =
      absl::Milliseconds(absl::GetFlag(FLAGS_watch_max_lag_ms));
  auto auto_merge = IdentityPolicy::ParseAutoMergeTypes(absl::GetFlag(FLAGS_auto_merge_types));
  if (!auto_merge.ok()) return Fail("config.invalid", auto_merge.status());
  options.identity_policy.auto_merge_types = *std::move(auto_merge);
  auto deny = identity::MergeDenyList::Parse(absl::GetFlag(FLAGS_merge_deny_list));
  if (!deny.ok()) {
    return Fail("config.invalid", absl::InvalidArgumentError(absl::StrCat(
                                      "--merge_deny_list: ", deny.status().message())));
  }
  options.identity_policy.deny_list = *std::move(deny);
  auto countries = identity::DefaultCountries::Parse(absl::GetFlag(FLAGS_default_country));
  if (!countries.ok()) {
    return Fail("config.invalid", absl::InvalidArgumentError(absl::StrCat(
                                      "--default_country: ", countries.status().message())));
  }
  options.default_countries = *std::move(countries);
  // For fault tests: ONESTORY_FAILPOINT=<step> (e.g. merge.swap) kills the process as kill -9
  // would, just before that step of a merge or unmerge. outbox.drain: the first write whose
  // outbox is marked is answered, its drain (and every later one) skipped, and the process
  // exits 0.5 s later: a crash between the answer and the drain.
  if (const char* fp = std::getenv("ONESTORY_FAILPOINT"); fp != nullptr && *fp != '\0') {
    std::string step = fp;
    Log(LogLevel::kWarning, "failpoint.armed", {{"step", step}});
    steps::Failpoint failpoint = [step](const std::string& at) {
      if (at != step) return false;
      Log(LogLevel::kWarning, "failpoint.hit", {{"step", at}});
      if (at != "outbox.drain") _exit(137);
      static std::once_flag exit_soon;
      std::call_once(exit_soon, [] {
        std::thread([] {
          absl::SleepFor(absl::Milliseconds(500));
          _exit(137);
        }).detach();
      });
      return true;
    };
    options.merge_failpoint = failpoint;
    outbox::SetFailpoint(failpoint);
  }
  auto server = OneStoryServer::Start(options);
  if (!server.ok()) return Fail("server.start_failed", server.status());
  WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*server)->metrics_port());
  WritePortFile(absl::GetFlag(FLAGS_http_port_file), (*server)->http_port());
  WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    absl::Status st = (*server)->auth()->Reload();
    if (st.ok()) {
      Log(LogLevel::kInfo, "api_keys.reloaded",
          {{"keys", absl::StrCat((*server)->auth()->key_count())}});
    } else {
      Log(LogLevel::kError, "api_keys.reload_failed",  // or the agent token keys
          {{"error", std::string(st.message())}, {"kept", "the keys loaded before"}});
    }
    if (!absl::GetFlag(FLAGS_retention_file).empty()) {
      if (absl::Status rst = retention_policy->Reload(); rst.ok()) {
        Log(LogLevel::kInfo, "retention.reloaded", {{"file", absl::GetFlag(FLAGS_retention_file)}});
      } else {
        Log(LogLevel::kError, "retention.reload_failed",
            {{"error", std::string(rst.message())}, {"kept", "the rules loaded before"}});
      }
    }
  }
  Log(LogLevel::kInfo, "server.stopping", {{"signal", absl::StrCat(sig)}});
  (*server)->Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms)));
  server->reset();
  embedded_redis.reset();
  Log(LogLevel::kInfo, "server.stopped");
  return 0;
}

}  // namespace onestory::service
