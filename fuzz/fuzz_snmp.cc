// Fuzz target: strata-snmp's reading of stratad's control replies (snmp/mib.h). The input is
// split at NUL octets into the "stats", "unique" and three "top" replies, each parsed as JSON
// (a reply that is not JSON stays null). Invariants: nothing crashes or throws; there is one
// value slot per object; every value has its object's type; Counter32 values fit 32 bits.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "snmp/mib.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  nlohmann::json parts[5];
  size_t start = 0;
  for (int i = 0; i < 5 && start <= all.size(); ++i) {
    size_t end = all.find('\0', start);
    if (end == std::string_view::npos) end = all.size();
    parts[i] = nlohmann::json::parse(all.substr(start, end - start), nullptr, false);
    if (parts[i].is_discarded()) parts[i] = nullptr;
    start = end + 1;
  }
  snmp::Reading r;
  r.reachable = size > 0 && data[0] != ' ';
  r.stats = parts[0];
  r.unique = parts[1];
  for (int w = 0; w < 3; ++w) r.top[w] = parts[2 + w];
  r.unix_now = 1796601600;
  const auto values = snmp::values(r);
  const auto& objects = snmp::objects();
  STRATA_FUZZ_CHECK(values.size() == objects.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i]) continue;
    STRATA_FUZZ_CHECK(values[i]->type == objects[i].type);
    if (values[i]->type == snmp::Type::kCounter32 || values[i]->type == snmp::Type::kGauge ||
        values[i]->type == snmp::Type::kUnsigned || values[i]->type == snmp::Type::kTimeTicks)
      STRATA_FUZZ_CHECK(values[i]->number <= 0xffffffffu);
  }
  STRATA_FUZZ_CHECK(snmp::current_mode(r) >= 1 && snmp::current_mode(r) <= 6);
  return 0;
}
