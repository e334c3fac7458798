#include "libs/redis/subscriber.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace onestory::redis {

Subscriber::Subscriber(EventLoop* loop, Options options, Callbacks callbacks)
    : AsyncConnection(loop, std::move(options), "pubsub"), callbacks_(std::move(callbacks)) {}

void Subscriber::SendCommand(const char* verb, const std::string& channel) {
  const char* argv[2] = {verb, channel.data()};
  size_t lens[2] = {strlen(verb), channel.size()};
  redisAsyncCommandArgv(context(), &Subscriber::OnPubSubReply, this, 2, argv, lens);
}

void Subscriber::Subscribe(const std::string& channel) {
  Channel& c = channels_[channel];
  c.wanted = true;
  if (c.state == ChannelState::kSubscribed) {
    callbacks_.on_subscribed(channel);
    return;
  }
  if (c.state == ChannelState::kNone && ready()) {
    c.state = ChannelState::kSubscribing;
    SendCommand("SUBSCRIBE", channel);
  }
  // kSubscribing: confirmation pending. kUnsubscribing: re-subscribed when the ack arrives.
  // Not ready: subscribed in OnReady.
}

void Subscriber::Unsubscribe(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  it->second.wanted = false;
  if (it->second.state == ChannelState::kSubscribed && ready()) {
    it->second.state = ChannelState::kUnsubscribing;
    SendCommand("UNSUBSCRIBE", channel);
  } else if (it->second.state == ChannelState::kNone) {
    channels_.erase(it);
  }
}

void Subscriber::OnReady() {
  for (auto it = channels_.begin(); it != channels_.end();) {
    if (!it->second.wanted) {
      channels_.erase(it++);
      continue;
    }
    it->second.state = ChannelState::kSubscribing;
    SendCommand("SUBSCRIBE", it->first);
    ++it;
  }
}

void Subscriber::OnLost(const absl::Status&) {
  for (auto& [name, c] : channels_) c.state = ChannelState::kNone;
}

void Subscriber::OnPubSubReply(redisAsyncContext* ac, void* r, void* privdata) {
  (void)ac;
  auto* self = static_cast<Subscriber*>(privdata);
  auto* reply = static_cast<redisReply*>(r);
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  const redisReply* kind = reply->element[0];
  const redisReply* channel = reply->element[1];
  const redisReply* third = reply->element[2];
  if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING) return;
  absl::string_view payload;
  if (third->type == REDIS_REPLY_STRING) payload = absl::string_view(third->str, third->len);
  self->HandleReply(absl::string_view(kind->str, kind->len),
                    absl::string_view(channel->str, channel->len), payload);
}

void Subscriber::HandleReply(absl::string_view kind, absl::string_view channel_name,
                             absl::string_view payload) {
  if (kind == "message") {
    callbacks_.on_message(channel_name, payload);
    return;
  }
  auto it = channels_.find(std::string(channel_name));
  if (it == channels_.end()) return;
  Channel& c = it->second;
  if (kind == "subscribe") {
    c.state = ChannelState::kSubscribed;
    if (c.wanted) {
      callbacks_.on_subscribed(channel_name);
    } else if (ready()) {
      c.state = ChannelState::kUnsubscribing;
      SendCommand("UNSUBSCRIBE", it->first);
    }
  } else if (kind == "unsubscribe") {
    c.state = ChannelState::kNone;
    if (c.wanted && ready()) {
      c.state = ChannelState::kSubscribing;
      SendCommand("SUBSCRIBE", it->first);
    } else if (!c.wanted) {
      channels_.erase(it);
    }
  }
}

}  // namespace onestory::redis
