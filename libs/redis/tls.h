// TLS to Redis (redis-server --tls-port; a cluster with tls-cluster yes): the OpenSSL client
// context every connection of a Client shares.
//
//   absl::StatusOr<std::shared_ptr<const redis::TlsContext>> tls =
//       redis::TlsContext::Create({.ca_file = "/etc/onestory/redis-ca.pem"});
//   if (!tls.ok()) ...;  // a file that cannot be read or parsed, named
//   options.tls = *tls;  // every connection of a Client with these Options speaks TLS
//
// Redis's certificate must chain to ca_file (empty: the system's CAs) and name server_name
// (empty: the host of the address connected to; an IP address is matched as an IP address). A
// client certificate (cert_file with key_file) is sent when Redis asks for one
// (tls-auth-clients). TLS 1.2 or newer. Thread-safe once created.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct ssl_ctx_st;
struct ssl_st;

namespace onestory::redis {

struct TlsOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
};

class TlsContext {
 public:
  // INVALID_ARGUMENT naming the option and the file when one cannot be used.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Create(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A client session on the connected socket fd to `host` (the address's host: the name checked
  // unless server_name is set). The caller frees it with SSL_free.
  absl::StatusOr<ssl_st*> NewSession(int fd, const std::string& host) const;
  const TlsOptions& options() const { return options_; }

 private:
  TlsContext(ssl_ctx_st* ctx, TlsOptions options) : ctx_(ctx), options_(std::move(options)) {}

  ssl_ctx_st* ctx_;
  TlsOptions options_;
};

// The reason OpenSSL gives for the last failure on this thread (its error queue, emptied).
std::string TlsError();

}  // namespace onestory::redis
