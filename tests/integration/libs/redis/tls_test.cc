// The Redis client over TLS against real redis-servers serving --tls-port with test
// certificates (tests/testing: MakeTlsFiles): commands, transactions, large values and
// pipelines; refusals of an untrusted or misnamed certificate and of a missing client
// certificate, with the reason; a Redis Cluster with tls-cluster yes, its three primaries and
// sharded pub/sub reached over TLS.
#include "libs/redis/tls.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/embedded/embedded_redis.h"
#include "libs/redis/client.h"
#include "libs/redis/sharded_subscriber.h"
#include "libs/redis/slot.h"
#include "tests/testing/redis_cluster_for_test.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::MakeTempDir;
using onestory::testing::MakeTlsFiles;
using onestory::testing::PickFreePort;
using onestory::testing::RedisClusterForTest;
using onestory::testing::TlsServerArgs;

const std::string& TlsDir() {
  static const std::string* dir = new std::string(MakeTlsFiles());
  return *dir;
}

// A redis-server serving TLS on a port of its own (and plain TCP nowhere a test uses).
struct TlsRedis {
  explicit TlsRedis(std::vector<std::string> more_args = {}) {
    tls_port = PickFreePort();
    embedded::EmbeddedRedisOptions o;
    o.data_dir = MakeTempDir("onestory-tls-redis-");
    o.supervise = false;
    o.extra_args = TlsServerArgs(TlsDir(), tls_port);
    o.extra_args.insert(o.extra_args.end(), more_args.begin(), more_args.end());
    auto started = embedded::EmbeddedRedis::Start(o);
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) server = *std::move(started);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", tls_port); }

  int tls_port = 0;
  std::unique_ptr<embedded::EmbeddedRedis> server;
};

Options ClientOptions(const std::string& address, const TlsOptions& tls) {
  Options o;
  o.address = address;
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Seconds(2);
  o.reconnect_min = absl::Milliseconds(20);
  o.reconnect_max = absl::Milliseconds(200);
  absl::StatusOr<std::shared_ptr<const TlsContext>> context = TlsContext::Create(tls);
  EXPECT_TRUE(context.ok()) << context.status();
  if (context.ok()) o.tls = *context;
  return o;
}

bool WaitConnected(Client& client, absl::Duration timeout = absl::Seconds(5)) {
  absl::Time give_up = absl::Now() + timeout;
  while (!client.connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  return client.connected();
}

// Why a client Redis does not accept says it cannot serve: after a second of attempts, a
// command fails (never answered) with the last connection error.
std::string WhyNotConnected(const Options& options) {
  Client client(options);
  absl::SleepFor(absl::Seconds(1));
  absl::StatusOr<Reply> r = client.CommandSync({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  return std::string(r.status().message());
}

TEST(TlsTest, CommandsTransactionsLargeValuesAndPipelines) {
  TlsRedis redis;
  Client client(ClientOptions(redis.address(), {.ca_file = TlsDir() + "/ca.crt"}));
  ASSERT_TRUE(WaitConnected(client));

  // 4 MiB each way: many TLS records, partial writes and reads.
  std::string big(4 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(client.CommandSync({"SET", "big", big}).ok());
  absl::StatusOr<Reply> got = client.CommandSync({"GET", "big"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str, big);

  // 2,000 commands in flight at once (over the client's connections), each answered once.
  constexpr int kCalls = 2000;
  absl::Mutex mu;
  std::vector<int64_t> seen;
  absl::Notification all;
  for (int i = 0; i < kCalls; ++i) {
    client.Command({"INCR", "n"}, absl::Now() + absl::Seconds(10), [&](absl::StatusOr<Reply> r) {
      absl::MutexLock lock(&mu);
      seen.push_back(r.ok() ? r->integer : -1);
      if (seen.size() == kCalls) all.Notify();
    });
  }
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < kCalls; ++i) ASSERT_EQ(seen[i], i + 1) << i;

  absl::Notification done;
  absl::StatusOr<Reply> snapshot;
  client.Snapshot({{"GET", "n"}, {"STRLEN", "big"}}, absl::Now() + absl::Seconds(5),
                  [&](absl::StatusOr<Reply> r) {
                    snapshot = std::move(r);
                    done.Notify();
                  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->elements.size(), 2u);
  EXPECT_EQ(snapshot->elements[0].str, absl::StrCat(kCalls));
  EXPECT_EQ(snapshot->elements[1].integer, static_cast<int64_t>(big.size()));
}

TEST(TlsTest, TheNameCheckedIsTheServerNameOrTheAddressesHost) {
  TlsRedis redis;
  // The certificate names IP 127.0.0.1 and DNS redis.test.
  Client by_ip(ClientOptions(redis.address(), {.ca_file = TlsDir() + "/ca.crt"}));
  EXPECT_TRUE(WaitConnected(by_ip));
  Client by_name(ClientOptions(redis.address(),
                               {.ca_file = TlsDir() + "/ca.crt", .server_name = "redis.test"}));
  EXPECT_TRUE(WaitConnected(by_name));
  std::string why = WhyNotConnected(ClientOptions(
      redis.address(), {.ca_file = TlsDir() + "/ca.crt", .server_name = "other.test"}));
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;
  EXPECT_NE(why.find(redis.address()), std::string::npos) << why;
}

TEST(TlsTest, AnUntrustedCertificateIsRefusedWithTheReason) {
  TlsRedis redis;
  std::string why =
      WhyNotConnected(ClientOptions(redis.address(), {.ca_file = TlsDir() + "/other-ca.crt"}));
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;
}

TEST(TlsTest, AClientCertificateWhenRedisAsksForOne) {
  TlsRedis redis({"--tls-auth-clients", "yes"});
  // Without one: Redis ends the handshake (TLS 1.3 may first let it look complete), so no
  // command is ever answered.
  WhyNotConnected(ClientOptions(redis.address(), {.ca_file = TlsDir() + "/ca.crt"}));
  Client client(ClientOptions(redis.address(), {.ca_file = TlsDir() + "/ca.crt",
                                                .cert_file = TlsDir() + "/client.crt",
                                                .key_file = TlsDir() + "/client.key"}));
  ASSERT_TRUE(WaitConnected(client));
  absl::StatusOr<Reply> pong = client.CommandSync({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str, "PONG");
}

TEST(TlsTest, APlainClientOnTheTlsPortFailsInsteadOfHanging) {
  TlsRedis redis;
  Options plain;
  plain.address = redis.address();
  plain.connect_timeout = absl::Milliseconds(500);
  plain.command_timeout = absl::Milliseconds(500);
  Client client(plain);
  absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = client.CommandSync({"PING"}, absl::Seconds(3));
  EXPECT_FALSE(r.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(TlsContextTest, UnusableFilesAreNamed) {
  absl::StatusOr<std::shared_ptr<const TlsContext>> c =
      TlsContext::Create({.ca_file = "/nonexistent/ca.pem"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("CA file '/nonexistent/ca.pem'"), std::string::npos)
      << c.status();
  c = TlsContext::Create({.cert_file = TlsDir() + "/client.crt"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("key"), std::string::npos) << c.status();
  // A key that is not the certificate's.
  c = TlsContext::Create(
      {.cert_file = TlsDir() + "/client.crt", .key_file = TlsDir() + "/redis.key"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("redis.key"), std::string::npos) << c.status();
  // Not a certificate at all.
  c = TlsContext::Create({.ca_file = TlsDir() + "/san.ext"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

// Runs fn on the client's loop thread and waits for it.
void OnLoop(Client& client, absl::AnyInvocable<void()> fn) {
  absl::Notification done;
  client.loop()->Post([&] {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

TEST(TlsClusterTest, EveryPrimaryAndShardedPubSubOverTls) {
  RedisClusterForTest cluster("", TlsDir());
  Client client(cluster.ClientOptions());
  ASSERT_TRUE(WaitConnected(client, absl::Seconds(10)));
  // Keys on every primary, each written and read over TLS.
  std::set<int> primaries;
  for (int i = 0; i < 60; ++i) {
    std::string key = absl::StrCat("{k", i, "}:v");
    ASSERT_TRUE(client.CommandSync({"SET", key, absl::StrCat(i)}).ok()) << key;
    absl::StatusOr<Reply> got = client.CommandSync({"GET", key});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->str, absl::StrCat(i));
    primaries.insert(cluster.PrimaryOf(KeySlot(key)));
  }
  EXPECT_EQ(primaries.size(), 3u);

  // One channel per primary: SSUBSCRIBE over TLS on its node, then SPUBLISH.
  std::vector<std::string> channels;
  for (int port : cluster.Primaries()) {
    for (int i = 0;; ++i) {
      std::string channel = absl::StrCat("{c", port, "_", i, "}:n");
      if (cluster.PrimaryOf(KeySlot(channel)) != port) continue;
      channels.push_back(channel);
      break;
    }
  }
  absl::Mutex mu;
  std::set<std::string> received;
  std::atomic<int> subscribed{0};
  ShardedSubscriber::Callbacks cb;
  cb.on_message = [&](absl::string_view channel, absl::string_view payload) {
    absl::MutexLock lock(&mu);
    received.insert(absl::StrCat(channel, "=", payload));
  };
  cb.on_subscribed = [&](absl::string_view) { ++subscribed; };
  std::unique_ptr<ShardedSubscriber> sub = std::make_unique<ShardedSubscriber>(
      client.loop(), cluster.ClientOptions(), client.router(), std::move(cb));
  OnLoop(client, [&] {
    sub->Start();
    for (const std::string& c : channels) sub->Subscribe(c);
  });
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (subscribed.load() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(subscribed.load(), 3);
  for (const std::string& c : channels) {
    ASSERT_TRUE(client.CommandSync({"SPUBLISH", c, "hello"}).ok()) << c;
  }
  give_up = absl::Now() + absl::Seconds(10);
  for (;;) {
    {
      absl::MutexLock lock(&mu);
      if (received.size() == channels.size() || absl::Now() > give_up) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::MutexLock lock(&mu);
  for (const std::string& c : channels) EXPECT_TRUE(received.contains(c + "=hello")) << c;
  OnLoop(client, [&] {
    sub->Stop();
    sub.reset();
  });
}

}  // namespace
}  // namespace onestory::redis
