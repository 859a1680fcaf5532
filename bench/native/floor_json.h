// JSON for the C++ floor: a small reader, enough for an inputs folder's spec.json, and what writes the line of
// results.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace floor_bench {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double number = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* get(const std::string& key) const {
    for (const auto& m : members) {
      if (m.first == key) return &m.second;
    }
    return nullptr;
  }
};

// The one JSON value of `text`; throws InputError ("invalid JSON at byte N: ...") otherwise.
Json ParseJson(const std::string& text);

// `v` with all its digits (%.17g); null when it is not finite, as JSON has no NaN or infinity.
std::string JsonNumber(double v);

// `s` quoted and escaped.
std::string JsonString(const std::string& s);

}  // namespace floor_bench
