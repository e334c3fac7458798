// Small builders for the request messages tests write over and over. Tests only.
//
//   v1::Identifier phone = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100");
#pragma once

#include <string>

#include "onestory/v1/common.pb.h"

namespace onestory::testing {

inline v1::Identifier Id(v1::IdentifierType type, const std::string& value) {
  v1::Identifier id;
  id.set_type(type);
  id.set_value(value);
  return id;
}

}  // namespace onestory::testing
