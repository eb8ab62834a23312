// Fuzz target: the dynamic blocks' parsers. The first octet picks one: 0, the state file
// (BlockBook::restore); 1, a control request ("blocks": list, add, remove) as JSON; 2, a
// `strata block --for` duration. Invariants: nothing crashes; a state file that restores
// serializes to one that restores again to the same text; every active block's prefix is
// found by the set the workers would read (its own first address matches it); a refused file
// changes nothing.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "control/blocks_report.h"
#include "fuzz_check.h"
#include "policy/blocks.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr int64_t kNow = 1'796'083'200;
  policy::BlockBook book(2);
  book.set_logging(false);
  book.configure(policy::BlocksConfig{});
  switch (data[0] % 3) {
    case 0: {
      const std::string error = book.restore(rest, kNow);
      if (!error.empty()) {
        STRATA_FUZZ_CHECK(book.view().blocks.empty());
        break;
      }
      const std::string once = book.serialize(kNow);
      policy::BlockBook again(2);
      again.set_logging(false);
      STRATA_FUZZ_CHECK(again.restore(once, kNow).empty());
      STRATA_FUZZ_CHECK(again.serialize(kNow) == once);
      const auto set = book.build_set();
      for (const policy::Block& b : set->blocks()) {
        STRATA_FUZZ_CHECK(b.expires_s > kNow);
        STRATA_FUZZ_CHECK(set->match(clients::AddressKey::from(b.prefix.address)) != nullptr);
      }
      break;
    }
    case 1: {
      const nlohmann::json request = nlohmann::json::parse(rest, nullptr, false);
      if (request.is_discarded() || !request.is_object()) break;
      try {
        const nlohmann::json reply = control::blocks_command(book, request, kNow, 0);
        STRATA_FUZZ_CHECK(reply.contains("ok"));
        if (!reply["ok"].get<bool>()) STRATA_FUZZ_CHECK(reply.contains("error"));
      } catch (const nlohmann::json::exception&) {
        // A field of the wrong type: the control server answers it as an error.
      }
      const auto set = book.build_set();
      STRATA_FUZZ_CHECK(set->blocks().size() <= 1);
      break;
    }
    case 2: {
      const auto d = cli::parse_duration(rest);
      if (d) STRATA_FUZZ_CHECK(*d > 0);
      break;
    }
  }
  return 0;
}
