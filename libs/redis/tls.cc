#include "libs/redis/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace onestory::redis {
namespace {

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string TlsError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {  // NOLINT(runtime/int)
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "unknown TLS error" : out;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "redis TLS: a client certificate needs both its certificate and its key file");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("redis TLS: ", TlsError()));
  auto fail = [ctx](const std::string& what, const std::string& file) {
    std::string why = TlsError();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        absl::StrCat("redis TLS: ", what, " '", file, "' cannot be used: ", why));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // The pending output is a std::string that may move between retries of a partial write.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) return fail("the system's CAs", "");
  } else if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return fail("CA file", options.ca_file);
  }
  if (!options.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
      return fail("certificate file", options.cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("key file", options.key_file);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("key file", options.key_file);
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx, options));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<SSL*> TlsContext::NewSession(int fd, const std::string& host) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("redis TLS: ", TlsError()));
  const std::string& name = options_.server_name.empty() ? host : options_.server_name;
  bool ok = SSL_set_fd(ssl, fd) == 1;
  if (ok && IsIpAddress(name)) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else if (ok) {
    ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!ok) {
    std::string why = TlsError();
    SSL_free(ssl);
    return absl::InternalError(absl::StrCat("redis TLS: ", why));
  }
  return ssl;
}

}  // namespace onestory::redis
