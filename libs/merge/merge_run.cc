#include "libs/merge/merge_run.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "libs/lua/merge_stage_engagement.h"

namespace onestory::merge {

using redis::Reply;

lua::MergeMoveIndex MoveIndexCall(const std::string& tenant, const std::string& field,
                                  const std::string& new_owner, const std::string& old_owner) {
  size_t colon = field.find(':');
  lua::MergeMoveIndex call;
  call.index = keys::IdentifierKey(tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                                   field.substr(colon + 1));
  call.new_owner = new_owner;
  call.old_owner = old_owner;
  return call;
}

lua::MergeReleaseNotify ReleaseNotifyCall(const keys::CustomerKeys& customer,
                                          const std::string& merge_id, const std::string& message) {
  lua::MergeReleaseNotify call;
  call.profile = customer.profile();
  call.lock = merge_id;
  call.notify_channel = customer.channel();
  call.message = message;
  return call;
}

void ReadEngagement(redis::Client* client, const std::string& tenant,
                    const std::string& customer_id, EngagementParts parts, absl::Time deadline,
                    Callback<std::vector<std::string>> done) {
  keys::CustomerKeys ck(tenant, customer_id);
  struct Read {
    const char* part;
    std::vector<std::string> cmd;
  };
  std::vector<Read> reads;
  if (parts.records) {
    reads.push_back({"cs", {"HGETALL", ck.conversation_records()}});
    reads.push_back({"ca", {"HGETALL", ck.cases()}});
    reads.push_back({"fa", {"HGETALL", ck.facts()}});
  }
  if (parts.contacts) {
    reads.push_back({"ct", {"ZRANGE", ck.contacts(), "0", "-1", "WITHSCORES"}});
    reads.push_back({"cc", {"ZRANGE", ck.contact_channels(), "0", "-1", "WITHSCORES"}});
  }
  if (parts.signals) reads.push_back({"sg", {"HGETALL", ck.signals()}});
  auto pairs = std::make_shared<std::vector<std::string>>();
  auto case_ids = std::make_shared<std::vector<std::string>>();
  auto shared_done = std::make_shared<Callback<std::vector<std::string>>>(std::move(done));
  auto read = Barrier::Make(reads.size(), [client, tenant, customer_id, deadline, pairs, case_ids,
                                           shared_done](absl::Status st) {
    if (!st.ok()) return (*shared_done)(st);
    // The due time the index holds for each case (one ZSCORE each, pipelined: the client
    // routes ZSCORE by its key on a cluster).
    auto dues = std::make_shared<std::vector<std::string>>(case_ids->size());
    auto due =
        Barrier::Make(case_ids->size(), [pairs, case_ids, dues, shared_done](absl::Status st) {
          if (!st.ok()) return (*shared_done)(st);
          for (size_t i = 0; i < case_ids->size(); ++i) {
            if ((*dues)[i].empty()) continue;
            pairs->push_back(absl::StrCat("du|", (*case_ids)[i]));
            pairs->push_back((*dues)[i]);
          }
          (*shared_done)(std::move(*pairs));
        });
    for (size_t i = 0; i < case_ids->size(); ++i) {
      client->Command({"ZSCORE", keys::DuePromisesKey(keys::DueBucket(tenant, customer_id)),
                       absl::StrCat(tenant, "|", customer_id, "|", (*case_ids)[i])},
                      deadline, [due, dues, i](absl::StatusOr<Reply> r) {
                        if (r.ok() && r->is_string()) (*dues)[i] = r->str;
                        due->Arrive(r.status());
                      });
    }
  });
  for (const Read& rd : reads) {
    std::string part = rd.part;
    client->Command(rd.cmd, deadline, [read, pairs, case_ids, part](absl::StatusOr<Reply> r) {
      if (r.ok()) {
        // Each reply's (name, value) pairs; the barrier's callback runs after the last one, on
        // the same loop thread as every callback here.
        for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
          pairs->push_back(absl::StrCat(part, "|", r->elements[i].str));
          pairs->push_back(r->elements[i + 1].str);
          if (part == "ca") case_ids->push_back(r->elements[i].str);
        }
      }
      read->Arrive(r.status());
    });
  }
}

void StageEngagement(redis::Client* client, const keys::CustomerKeys& into,
                     const std::string& merge_id, const std::string& done_field,
                     const std::string& only_merge, std::vector<std::string> pairs,
                     absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
  size_t n = pairs.size() / 2;
  size_t chunks = (n + kWriteChunkEntries - 1) / kWriteChunkEntries;
  auto written = Barrier::Make(chunks, std::move(done));
  for (size_t c = 0; c < chunks; ++c) {
    lua::MergeStageEngagement stage;
    stage.staging = into.merge_staging_engagement(merge_id);
    stage.merge_state = into.merge_state();
    stage.done = done_field;
    stage.only_merge = only_merge;
    for (size_t i = 2 * c * kWriteChunkEntries;
         i < std::min(pairs.size(), 2 * (c + 1) * kWriteChunkEntries); ++i) {
      stage.pairs.push_back(std::move(pairs[i]));
    }
    client->Fcall(stage, deadline,
                  [written](absl::StatusOr<Reply> r) { written->Arrive(r.status()); });
  }
}

}  // namespace onestory::merge
