// Unique-client sketches as the control API, `strata clients --count/--save-sketch`,
// `strata merge-sketches` and the state directory see them: one JSON document listing, per
// window (1m, 1h, 1d; current and previous) and sketch kind (v4, v4/24, v6, v6/64, v6/48),
// the estimate and optionally the registers (base64). Documents from several servers merge
// entry by entry: same window, same start, same kind.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "clients/unique.h"

namespace strata::control {

inline constexpr const char* kSketchFormat = "strata-unique-sketches";

struct SketchEntry {
  clients::Window window = clients::Window::kMinute;
  int64_t start = 0;  // unix seconds
  size_t kind = 0;    // index into clients::kSketchKinds
  std::shared_ptr<clients::Hll> sketch;
};

// The current and previous window of every length and kind, merged over `counters`.
std::vector<SketchEntry> collect_sketches(const std::vector<const clients::UniqueCounter*>& counters,
                                          int64_t now_s);

nlohmann::json sketches_json(const std::vector<SketchEntry>& entries, bool with_registers,
                             int64_t now_s);

// Reads a document with registers. Throws std::runtime_error naming what is wrong.
// Throws on a document of another format or version. A bad entry throws too, unless
// `skipped` is given: then it is left out and its reason added there (stratad's own state
// file, where one damaged entry must not cost the others).
std::vector<SketchEntry> parse_sketches(const nlohmann::json& doc, std::vector<std::string>* skipped = nullptr);

// Merges entries with the same window, start and kind.
std::vector<SketchEntry> merge_sketches(const std::vector<SketchEntry>& entries);

// The table `strata clients --count` and `strata merge-sketches` print.
std::string sketches_table(const nlohmann::json& doc);

}  // namespace strata::control
