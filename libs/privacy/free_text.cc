#include "libs/privacy/free_text.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/identity.pb.h"
#include "onestory/v1/options.pb.h"

namespace onestory::privacy {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A free-text map<string, string> field. Known ones are read through their generated accessors:
// reflection would first copy every entry into a message of its own (about 0.5 µs per entry,
// on every append with attributes).
struct StringMap {
  const FieldDescriptor* field;
  const google::protobuf::Map<std::string, std::string>* (*get)(const Message&);  // null: unknown
  google::protobuf::Map<std::string, std::string>* (*mutate)(Message*);
};

// The fields of one message type that MaskFreeText visits.
struct Plan {
  std::vector<const FieldDescriptor*> strings;   // free-text strings, singular or repeated
  std::vector<StringMap> maps;                   // free-text map<string, string>: the values
  std::vector<const FieldDescriptor*> messages;  // messages (and map entries) with free text inside
};

template <typename M>
StringMap Typed(const FieldDescriptor* f) {
  return {f,
          [](const Message& m) -> const google::protobuf::Map<std::string, std::string>* {
            const auto* typed = dynamic_cast<const M*>(&m);
            return typed != nullptr ? &typed->attributes() : nullptr;
          },
          [](Message* m) { return static_cast<M*>(m)->mutable_attributes(); }};
}

StringMap ForMap(const FieldDescriptor* f) {
  if (f == v1::Event::descriptor()->FindFieldByName("attributes")) return Typed<v1::Event>(f);
  if (f == v1::Profile::descriptor()->FindFieldByName("attributes")) return Typed<v1::Profile>(f);
  return {f, nullptr, nullptr};
}

bool IsString(const FieldDescriptor* f) { return f->type() == FieldDescriptor::TYPE_STRING; }

// True when `d` holds free text, directly or in a message inside it. A type already on the way
// (a recursive message) counts as holding it: visiting it costs a lookup, missing it a leak.
bool Reaches(const Descriptor* d, absl::flat_hash_set<const Descriptor*>* on_the_way) {
  if (!on_the_way->insert(d).second) return true;
  bool found = false;
  for (int i = 0; i < d->field_count() && !found; ++i) {
    const FieldDescriptor* f = d->field(i);
    if (IsFreeText(f) && (IsString(f) || f->is_map())) {
      found = true;
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      found = Reaches(f->message_type(), on_the_way);
    }
  }
  on_the_way->erase(d);
  return found;
}

Plan BuildPlan(const Descriptor* d) {
  Plan plan;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    absl::flat_hash_set<const Descriptor*> on_the_way = {d};
    if (f->is_map()) {
      if (IsFreeText(f) && IsString(f->message_type()->map_value())) {
        plan.maps.push_back(ForMap(f));
      } else if (Reaches(f->message_type(), &on_the_way)) {
        plan.messages.push_back(f);
      }
    } else if (IsString(f)) {
      if (IsFreeText(f)) plan.strings.push_back(f);
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE &&
               Reaches(f->message_type(), &on_the_way)) {
      plan.messages.push_back(f);
    }
  }
  return plan;
}

struct PlanCache {
  absl::Mutex mu;
  absl::flat_hash_map<const Descriptor*, std::unique_ptr<const Plan>> plans ABSL_GUARDED_BY(mu);
};

// Plans are built once per type and never dropped, so a pointer stays valid. Each thread keeps
// the plans it used in a map of its own: the hot path (every append) takes no lock.
const Plan& PlanFor(const Descriptor* d) {
  thread_local absl::flat_hash_map<const Descriptor*, const Plan*> mine;
  if (auto it = mine.find(d); it != mine.end()) return *it->second;
  static PlanCache* const cache = new PlanCache();  // never destroyed: used until exit
  const Plan* plan = nullptr;
  {
    absl::ReaderMutexLock lock(&cache->mu);
    if (auto it = cache->plans.find(d); it != cache->plans.end()) plan = it->second.get();
  }
  if (plan == nullptr) {
    auto built = std::make_unique<const Plan>(BuildPlan(d));
    absl::MutexLock lock(&cache->mu);
    plan = cache->plans.try_emplace(d, std::move(built)).first->second.get();
  }
  mine.emplace(d, plan);
  return *plan;
}

// Masks `text`; stores the masked text through `set` only when something was masked.
template <typename Set>
int MaskInto(const Redactor& redactor, const std::string& text, Set set) {
  if (text.empty()) return 0;
  std::string masked;
  int count = redactor.MaskIfAny(text, &masked);
  if (count > 0) set(std::move(masked));
  return count;
}

int Walk(const Redactor& redactor, Message* m) {
  const Plan& plan = PlanFor(m->GetDescriptor());
  const Reflection* r = m->GetReflection();
  int count = 0;
  for (const FieldDescriptor* f : plan.strings) {
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        std::string scratch;
        count += MaskInto(redactor, r->GetRepeatedStringReference(*m, f, i, &scratch),
                          [&](std::string s) { r->SetRepeatedString(m, f, i, std::move(s)); });
      }
    } else {
      std::string scratch;
      count += MaskInto(redactor, r->GetStringReference(*m, f, &scratch),
                        [&](std::string s) { r->SetString(m, f, std::move(s)); });
    }
  }
  for (const StringMap& map : plan.maps) {
    const FieldDescriptor* f = map.field;
    if (const auto* typed = map.get != nullptr ? map.get(*m) : nullptr; typed != nullptr) {
      std::vector<std::pair<std::string, std::string>> masked;  // changed only: rarely any
      for (const auto& [key, value] : *typed) {
        count += MaskInto(redactor, value,
                          [&](std::string s) { masked.emplace_back(key, std::move(s)); });
      }
      for (auto& [key, value] : masked) (*map.mutate(m))[key] = std::move(value);
      continue;
    }
    const FieldDescriptor* value = f->message_type()->map_value();
    for (int i = 0; i < r->FieldSize(*m, f); ++i) {
      const Message& entry = r->GetRepeatedMessage(*m, f, i);
      std::string scratch;
      count += MaskInto(redactor, entry.GetReflection()->GetStringReference(entry, value, &scratch),
                        [&](std::string s) {
                          Message* e = r->MutableRepeatedMessage(m, f, i);
                          e->GetReflection()->SetString(e, value, std::move(s));
                        });
    }
  }
  for (const FieldDescriptor* f : plan.messages) {
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        count += Walk(redactor, r->MutableRepeatedMessage(m, f, i));
      }
    } else if (r->HasField(*m, f)) {
      count += Walk(redactor, r->MutableMessage(m, f));
    }
  }
  return count;
}

}  // namespace

bool IsFreeText(const FieldDescriptor* field) {
  return field->options().GetExtension(v1::free_text);
}

int MaskFreeText(const Redactor& redactor, Message* message) { return Walk(redactor, message); }

const Redactor& OrCardsOnly(const Redactor* configured) {
  if (configured != nullptr) return *configured;
  static const Redactor* const cards_only = new Redactor(*Redactor::Create({}));  // never freed
  return *cards_only;
}

}  // namespace onestory::privacy
