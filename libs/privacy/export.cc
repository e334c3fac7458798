// PrivacyStore's export: a customer's data as JSON documents, read in parts (see "Export" in
// privacy_store.h).
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/privacy_export_range.h"
#include "libs/lua/privacy_export_read.h"
#include "libs/privacy/privacy_internal.h"
#include "libs/privacy/privacy_store.h"
#include "libs/timeline/stream_entry.h"
#include "libs/timeline/timeline_store.h"

namespace onestory::privacy {
namespace {

using internal::FindMergedSources;
using internal::MergedSource;
using redis::Reply;

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

// A JSON string literal (ids only: they are printable ASCII, but quotes and backslashes are
// escaped regardless).
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Documents of one section: {"section":"<name>","<name>":[...]} with at most kExportPageSize
// items each, and at least one document.
void AddSection(const std::string& name, const std::vector<std::string>& items,
                std::vector<std::string>* documents) {
  size_t i = 0;
  do {
    std::string doc = absl::StrCat("{\"section\":", JsonQuote(name), ",", JsonQuote(name), ":[");
    for (size_t n = 0; i < items.size() && n < static_cast<size_t>(kExportPageSize); ++i, ++n) {
      if (n > 0) doc.push_back(',');
      doc += items[i];
    }
    doc += "]}";
    documents->push_back(std::move(doc));
  } while (i < items.size());
}

}  // namespace

void PrivacyStore::ExportBegin(const v1::ExportCustomerRequest& request, absl::Time deadline,
                               Callback<ExportHead> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  std::string tenant = request.tenant();
  auto shared_done = std::make_shared<Callback<ExportHead>>(std::move(done));
  using Read = std::pair<std::string, Reply>;
  identity_->ResolveRef(
      tenant, "customer", request.customer(), false, deadline,
      [this, tenant, deadline, shared_done](absl::StatusOr<identity::IdentityStore::Resolved> who) {
        if (!who.ok()) return (*shared_done)(who.status());
        identity::FollowMerges<Read>(
            who->customer_id,
            [this, tenant, deadline](const std::string& c, Callback<Read> cb) {
              keys::CustomerKeys ck(tenant, c);
              lua::PrivacyExportRead read;
              read.profile = ck.profile();
              read.identifiers = ck.identifiers();
              read.conversation_records = ck.conversation_records();
              read.cases = ck.cases();
              read.facts = ck.facts();
              read.customer_id = c;
              client_->Fcall(read, deadline,
                             [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                               if (!r.ok()) return cb(r.status());
                               cb(Read{c, *std::move(r)});
                             });
            },
            [this, tenant, deadline, shared_done](absl::StatusOr<Read> read) {
              if (!read.ok()) return (*shared_done)(read.status());
              if (!read->second.is_array() || read->second.elements.size() != 5) {
                return (*shared_done)(
                    absl::InternalError("unexpected reply from privacy_export_read"));
              }
              auto r = std::make_shared<Read>(*std::move(read));
              FindMergedSources(
                  client_, tenant, r->first, deadline,
                  [r, shared_done](absl::StatusOr<std::vector<MergedSource>> merged) {
                    if (!merged.ok()) return (*shared_done)(merged.status());
                    const std::string& cid = r->first;
                    const auto& e = r->second.elements;
                    ExportHead head;
                    head.customer_id = cid;
                    v1::Profile profile = identity::ProfileFromHashes(cid, e[0], e[1]);
                    std::string doc =
                        absl::StrCat("{\"section\":\"profile\",\"customer_id\":", JsonQuote(cid),
                                     ",\"profile\":", ToJson(profile), ",\"merged_customers\":[");
                    for (size_t i = 0; i < merged->size(); ++i) {
                      const MergedSource& m = (*merged)[i];
                      absl::StrAppend(&doc, i > 0 ? "," : "",
                                      "{\"customer_id\":", JsonQuote(m.customer_id),
                                      ",\"merge_id\":", JsonQuote(m.merge_id),
                                      ",\"merged_into\":", JsonQuote(m.into),
                                      ",\"merged_at\":", ToJson(FromMillis(m.merged_at_ms)), "}");
                    }
                    doc += "]}";
                    head.documents.push_back(std::move(doc));
                    // Records by id, for a stable order.
                    auto sorted = [](const Reply& hash) {
                      std::map<std::string, std::string> out;
                      for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
                        out[hash.elements[i].str] = hash.elements[i + 1].str;
                      }
                      return out;
                    };
                    std::vector<std::string> items;
                    for (const auto& [id, json] : sorted(e[2])) {
                      absl::StatusOr<engagement::Record> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::ConversationFromRecord(id, cid, *s)));
                    }
                    head.conversations = static_cast<int64_t>(items.size());
                    AddSection("conversations", items, &head.documents);
                    items.clear();
                    for (const auto& [id, json] : sorted(e[3])) {
                      absl::StatusOr<engagement::Record> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::CaseFromRecord(id, cid, *s)));
                    }
                    head.cases = static_cast<int64_t>(items.size());
                    AddSection("cases", items, &head.documents);
                    items.clear();
                    for (const auto& [id, json] : sorted(e[4])) {
                      absl::StatusOr<engagement::Record> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::FactFromRecord(*s)));
                    }
                    head.facts = static_cast<int64_t>(items.size());
                    AddSection("facts", items, &head.documents);
                    (*shared_done)(std::move(head));
                  });
            });
      });
}

void PrivacyStore::ExportEvents(const std::string& tenant, const std::string& customer_id,
                                const std::string& after, absl::Time deadline,
                                Callback<EventPage> done) {
  keys::CustomerKeys ck(tenant, customer_id);
  lua::PrivacyExportRange range;
  range.profile = ck.profile();
  range.timeline = ck.timeline();
  range.customer_id = customer_id;
  range.start = after.empty() || after == "0-0" ? "-" : absl::StrCat("(", after);
  range.count = kExportPageSize;
  client_->Fcall(range, deadline,
                 [customer_id, after, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                   if (!r.ok()) return done(r.status());
                   EventPage page;
                   page.last_stream_id = after;
                   std::vector<std::string> items;
                   for (const Reply& entry : r->elements) {
                     absl::StatusOr<timeline::StreamEntry> stored =
                         timeline::ParseStreamEntry(entry);
                     if (!stored.ok()) return done(stored.status());
                     absl::StatusOr<v1::Event> e = stored->Event(customer_id);
                     if (!e.ok()) return done(e.status());
                     items.push_back(ToJson(*e));
                     page.last_stream_id = stored->id;
                   }
                   page.count = static_cast<int>(items.size());
                   if (!items.empty()) {
                     std::vector<std::string> docs;
                     AddSection("events", items, &docs);
                     page.document = std::move(docs[0]);
                   }
                   done(std::move(page));
                 });
}

std::string PrivacyStore::ExportEnd(const ExportHead& head, int64_t events) {
  return absl::StrCat("{\"section\":\"end\",\"customer_id\":", JsonQuote(head.customer_id),
                      ",\"counts\":{\"conversations\":", head.conversations,
                      ",\"cases\":", head.cases, ",\"facts\":", head.facts, ",\"events\":", events,
                      "}}");
}
}  // namespace onestory::privacy
