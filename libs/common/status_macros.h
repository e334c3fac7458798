// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr.
//
// Debian's Abseil ships no status macros; these are the only ones in the tree.
//
//   absl::StatusOr<Customer> Load(...) {
//     RETURN_IF_ERROR(ValidateTenant(tenant));
//     ASSIGN_OR_RETURN(std::string id, DecodeCursor(token));
//     ...
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ONESTORY_CONCAT_INNER(a, b) a##b
#define ONESTORY_CONCAT(a, b) ONESTORY_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (::absl::Status _st = (expr); !_st.ok()) {      \
      return _st;                                      \
    }                                                  \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status when not OK, else assigns the
// value to `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL(ONESTORY_CONCAT(_statusor_, __LINE__), lhs, rexpr)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                          \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
