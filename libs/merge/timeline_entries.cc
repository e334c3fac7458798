#include "libs/merge/timeline_entries.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/time_util.h"
#include "libs/identity/profile_codec.h"

namespace onestory::merge {

using redis::Reply;

absl::StatusOr<Entry> ParseEntry(const Reply& r) {
  absl::StatusOr<timeline::StreamEntry> stored = timeline::ParseStreamEntry(r);
  if (!stored.ok()) return stored.status();
  Entry e;
  static_cast<timeline::StreamEntry&>(e) = *std::move(stored);
  if (!e.event.ParseFromString(e.blob)) {
    return absl::InternalError(absl::StrCat("undecodable event at ", e.id));
  }
  return e;
}

std::string AppendedMs(const Entry& e) { return absl::StrCat(e.StoredAtMs()); }

bool HasTag(absl::string_view tags, absl::string_view merge_id) {
  for (absl::string_view t : absl::StrSplit(tags, ',')) {
    if (t == merge_id) return true;
  }
  return false;
}

std::string WithoutTag(absl::string_view tags, absl::string_view merge_id) {
  std::vector<absl::string_view> kept;
  for (absl::string_view t : absl::StrSplit(tags, ',', absl::SkipEmpty())) {
    if (t != merge_id) kept.push_back(t);
  }
  return absl::StrJoin(kept, ",");
}

std::string WithTag(absl::string_view tags, absl::string_view merge_id) {
  if (HasTag(tags, merge_id)) return std::string(tags);
  return tags.empty() ? std::string(merge_id) : absl::StrCat(tags, ",", merge_id);
}

Derived Recompute(const std::vector<const Entry*>& entries) {
  struct Conv {
    int64_t first, last, n;
    int channel;
  };
  Derived d;
  std::map<std::string, Conv> convs;
  for (const Entry* e : entries) {
    const v1::Event& ev = e->event;
    int64_t occ = ToMillis(ev.occurred_at());
    std::string act = absl::StrCat(identity::kActivityPrefix, static_cast<int>(ev.channel()));
    auto it = d.activity.find(act);
    if (it == d.activity.end() || occ > it->second) d.activity[act] = occ;
    if (ev.conversation_id().empty()) continue;
    if (ev.kind() == v1::EVENT_KIND_CALL_ENDED || ev.kind() == v1::EVENT_KIND_CONVERSATION_ENDED) {
      convs.erase(ev.conversation_id());
      continue;
    }
    auto [c, inserted] = convs.try_emplace(ev.conversation_id(), Conv{occ, occ, 0, ev.channel()});
    if (occ >= c->second.last) {
      c->second.last = occ;
      c->second.channel = ev.channel();
    }
    c->second.first = std::min(c->second.first, occ);
    ++c->second.n;
  }
  for (const auto& [id, c] : convs) {
    d.conversations[id] = absl::StrCat(c.first, "|", c.last, "|", c.n, "|", c.channel);
  }
  return d;
}

// Reads a whole stream in chunks.
void ReadStream(redis::Client* client, std::string key, absl::Time deadline,
                Callback<std::vector<Entry>> done) {
  struct State {
    redis::Client* client;
    std::string key;
    absl::Time deadline;
    std::vector<Entry> entries;
    Callback<std::vector<Entry>> done;
  };
  auto st = std::make_shared<State>(State{client, std::move(key), deadline, {}, std::move(done)});
  struct Next {
    static void Read(std::shared_ptr<State> st, std::string start) {
      st->client->Command({"XRANGE", st->key, start, "+", "COUNT", absl::StrCat(kReadChunk)},
                          st->deadline, [st](absl::StatusOr<Reply> r) {
                            if (!r.ok()) return st->done(r.status());
                            for (const Reply& item : r->elements) {
                              absl::StatusOr<Entry> e = ParseEntry(item);
                              if (!e.ok()) return st->done(e.status());
                              st->entries.push_back(*std::move(e));
                            }
                            if (r->elements.size() < kReadChunk)
                              return st->done(std::move(st->entries));
                            Read(st, absl::StrCat("(", st->entries.back().id));
                          });
    }
  };
  Next::Read(std::move(st), "-");
}

}  // namespace onestory::merge
