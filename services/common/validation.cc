#include "services/common/validation.h"

#include "absl/strings/str_cat.h"
#include "services/common/errors.h"

namespace order_platform {
namespace {

bool IsPrintableAscii(char c) { return c > 0x20 && c < 0x7f; }

bool IsValidUtf8WithoutControls(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Reject overlong encodings, surrogates and out-of-range code points.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    if (cp >= 0x80 && cp <= 0x9f) return false;  // C1 control characters.
    i += extra + 1;
  }
  return true;
}

}  // namespace

absl::Status ValidateRequestId(absl::string_view value, absl::string_view field) {
  return ValidateIdentifier(value, field, 128);
}

absl::Status ValidateIdentifier(absl::string_view value, absl::string_view field, size_t max_len) {
  if (value.empty()) return InvalidField(field, "is required");
  if (value.size() > max_len) {
    return InvalidField(field, absl::StrCat("must be at most ", max_len, " characters"));
  }
  for (char c : value) {
    if (!IsPrintableAscii(c)) {
      return InvalidField(field, "must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSku(absl::string_view value, absl::string_view field) {
  if (value.empty()) return InvalidField(field, "is required");
  if (value.size() > 64) return InvalidField(field, "must be at most 64 characters");
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return InvalidField(field, "must match [A-Za-z0-9._-]+");
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view value, absl::string_view field, size_t max_len,
                          bool required) {
  if (required && value.empty()) return InvalidField(field, "is required");
  if (value.size() > max_len) {
    return InvalidField(field, absl::StrCat("must be at most ", max_len, " bytes"));
  }
  if (!IsValidUtf8WithoutControls(value)) {
    return InvalidField(field, "must be UTF-8 text without control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateRange(int64_t value, absl::string_view field, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return InvalidField(field, absl::StrCat("must be between ", min, " and ", max));
  }
  return absl::OkStatus();
}

absl::Status ValidatePageSize(int32_t value, absl::string_view field, int32_t default_size,
                              int32_t max_size, int32_t* out) {
  if (value == 0) {
    *out = default_size;
    return absl::OkStatus();
  }
  OP_RETURN_IF_ERROR(ValidateRange(value, field, 1, max_size));
  *out = value;
  return absl::OkStatus();
}

uint64_t Fingerprint(absl::string_view data) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace order_platform
