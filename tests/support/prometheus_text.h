// Test support: reading samples out of the Prometheus text exposition format (what /metrics
// returns), so metric tests assert values the way a PromQL query would select them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace order_platform::testing {

// The labels of one sample line ("name{a="x",b="y"} 1"), unescaped values.
inline std::map<std::string, std::string> ParseLabels(absl::string_view body) {
  std::map<std::string, std::string> labels;
  size_t i = 0;
  while (i < body.size()) {
    const size_t eq = body.find('=', i);
    if (eq == absl::string_view::npos || eq + 1 >= body.size() || body[eq + 1] != '"') break;
    std::string key(absl::StripAsciiWhitespace(body.substr(i, eq - i)));
    std::string value;
    size_t j = eq + 2;
    for (; j < body.size() && body[j] != '"'; ++j) {
      if (body[j] == '\\' && j + 1 < body.size()) {
        ++j;
        value.push_back(body[j] == 'n' ? '\n' : body[j]);
      } else {
        value.push_back(body[j]);
      }
    }
    labels[std::move(key)] = std::move(value);
    i = j + 1;
    if (i < body.size() && body[i] == ',') ++i;
  }
  return labels;
}

// The sum of the values of every sample of `name` whose labels include all of `labels` (other
// labels may differ, as in a PromQL sum over the unnamed ones). nullopt when no sample matches.
inline std::optional<double> SampleValue(absl::string_view text, absl::string_view name,
                                         const std::map<std::string, std::string>& labels = {}) {
  std::optional<double> sum;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::ConsumePrefix(&line, name)) continue;
    std::map<std::string, std::string> found;
    if (!line.empty() && line[0] == '{') {
      const size_t close = line.rfind('}');
      if (close == absl::string_view::npos) continue;
      found = ParseLabels(line.substr(1, close - 1));
      line.remove_prefix(close + 1);
    }
    if (line.empty() || line[0] != ' ') continue;  // A longer name with the same prefix.
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = found.find(key);
      if (it == found.end() || it->second != value) match = false;
    }
    if (!match) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::StripAsciiWhitespace(line), ' ', absl::SkipEmpty());
    double value = 0;
    if (fields.empty() || !absl::SimpleAtod(fields[0], &value)) continue;
    sum = sum.value_or(0) + value;
  }
  return sum;
}

}  // namespace order_platform::testing
