// Free text: the one place that decides which text of the API is masked before it is stored, and
// the redactor that masks it. A field is free text when proto/onestory/v1/*.proto marks it
// [(onestory.v1.free_text) = true] (options.proto); every other string field is an identifier,
// a token or output, and is stored as sent.
//
// Every write masks its request once, after validating it as sent and before encoding anything,
// then stores, and answers from, the masked copy only:
//
//   RETURN_IF_ERROR(Validate(request));  // limits apply to the text as sent
//   v1::UpdateCaseRequest stored = MaskedForStorage(redactor_, request);  // note, promise, reason
//   ... build the event and the script's arguments from `stored` ...
//
// so the first answer and a retry's (read back from Redis) show the same masked text. Masking
// twice is not a no-op in general (a pattern may match its own "[name]"), hence once per request.
//
// Which fields of a message type hold free text (directly or in a message inside it) is worked
// out from the descriptors on first use and kept, so a call costs one cache lookup per message
// visited plus a Redactor::Mask of each non-empty free-text field. Thread-safe.
#pragma once

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "libs/privacy/redactor.h"

namespace onestory::privacy {

// True when `field` is marked [(onestory.v1.free_text) = true]. On a map field the mark covers
// the values; keys are names chosen by the integration and are never masked.
bool IsFreeText(const google::protobuf::FieldDescriptor* field);

// Masks in place every free-text field of `message` and of every message inside it (singular,
// repeated and map values). Returns the number of replacements (see Redactor::Mask). A field is
// rewritten only when something in it was masked. Text may get longer (a pattern's "[name]"
// can be longer than its match); nothing is cut.
int MaskFreeText(const Redactor& redactor, google::protobuf::Message* message);

// The masking everything stored passes through: `configured` (payment card numbers always, plus
// the patterns of --redact_patterns_file), or cards only when it is null. Every store takes the
// server's redactor at construction (null: cards only) and masks through this, so a store built
// without one still never keeps a card number.
const Redactor& OrCardsOnly(const Redactor* configured);

// A copy of `message` with its free text masked by OrCardsOnly(redactor).
template <typename Message>
Message MaskedForStorage(const Redactor* redactor, const Message& message) {
  Message out = message;
  MaskFreeText(OrCardsOnly(redactor), &out);
  return out;
}

}  // namespace onestory::privacy
