// Subscriber: one pub/sub connection carrying any number of channel subscriptions.
//
//   Subscriber sub(client.loop(), options, {
//       .on_message = [](absl::string_view channel, absl::string_view payload) { ... },
//       .on_subscribed = [](absl::string_view channel) { ... }});
//   loop->Post([&] { sub.Subscribe("os:{t:c:cus_1}:n"); });
//
// on_subscribed fires when Redis confirms a subscription, and again for every channel after a
// reconnect: messages published while the connection was down are lost, so a listener should
// treat it as "re-read your state". Unsubscribe is sent lazily and never races a re-subscribe of
// the same channel. Loop thread only (construct anywhere, call Start/methods on the loop).
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "libs/redis/async_connection.h"

namespace onestory::redis {

class Subscriber : public AsyncConnection {
 public:
  struct Callbacks {
    absl::AnyInvocable<void(absl::string_view channel, absl::string_view payload)> on_message;
    absl::AnyInvocable<void(absl::string_view channel)> on_subscribed;
  };

  Subscriber(EventLoop* loop, Options options, Callbacks callbacks);

  // Wants channel subscribed. Confirmation comes through on_subscribed (at once when it already
  // is subscribed).
  void Subscribe(const std::string& channel);
  // No longer wants channel.
  void Unsubscribe(const std::string& channel);

  size_t channels() const { return channels_.size(); }

 protected:
  void OnReady() override;
  void OnLost(const absl::Status& why) override;

 private:
  enum class ChannelState { kNone, kSubscribing, kSubscribed, kUnsubscribing };
  struct Channel {
    ChannelState state = ChannelState::kNone;
    bool wanted = false;
  };
  void SendCommand(const char* verb, const std::string& channel);
  static void OnPubSubReply(redisAsyncContext* ac, void* reply, void* privdata);
  void HandleReply(absl::string_view kind, absl::string_view channel, absl::string_view payload);

  Callbacks callbacks_;
  absl::flat_hash_map<std::string, Channel> channels_;
};

}  // namespace onestory::redis
