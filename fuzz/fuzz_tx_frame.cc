// Fuzz target: interleaved mode's read-back path. Octet 0 picks what the rest is: 0, a sent
// datagram as the error queue returns it (io/tx_frame.h): its payload lies inside the frame
// and a found peer has a family; 1, a program of operations on a small interleave table
// (clients/interleave.h), checked against a plain model: a timestamp is only ever handed to
// the address it was saved for, once, and the table never holds more than its capacity.
#include <cstdint>
#include <cstring>
#include <map>

#include "clients/interleave.h"
#include "fuzz_check.h"
#include "io/tx_frame.h"

using namespace strata;

namespace {

void table_program(const uint8_t* data, size_t size) {
  clients::InterleaveTable table(8);
  struct Saved { uint64_t tx; uint32_t peer; };
  std::map<uint64_t, Saved> model;  // what a take() may return for each receive timestamp
  // Each operation: op octet, receive-timestamp octet (few distinct keys: collisions), peer
  // octet, delta octet.
  for (size_t i = 0; i + 4 <= size; i += 4) {
    const uint64_t rx = (uint64_t{data[i + 1]} << 24) | 1;
    const uint32_t peer = data[i + 2] & 3;
    const base::IpAddress address = base::IpAddress::v4(0xC0000200 + peer);
    const uint64_t tx = rx + (uint64_t{data[i + 3]} << 8);
    switch (data[i] % 4) {
      case 0: {
        const auto r = table.save(rx, tx, address);
        if (r == clients::InterleaveTable::Saved::kDuplicate) model.erase(rx);
        else if (r != clients::InterleaveTable::Saved::kRefused) model[rx] = {tx, peer};
        break;
      }
      case 1:
        if (table.set_kernel_tx(rx, tx, address)) {
          STRATA_FUZZ_CHECK(model.count(rx) && model[rx].peer == peer);
          model[rx].tx = tx;
        }
        break;
      case 2:
        if (const auto held = table.take(rx, address)) {
          const auto it = model.find(rx);
          STRATA_FUZZ_CHECK(it != model.end() && it->second.peer == peer && it->second.tx == held->tx);
          model.erase(it);
        }
        break;
      case 3:
        table.forget(rx, address);
        if (model.count(rx) && model[rx].peer == peer) model.erase(rx);
        break;
    }
    STRATA_FUZZ_CHECK(table.held() <= table.capacity());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  if (data[0] == 1) {
    table_program(data + 1, size - 1);
    return 0;
  }
  const std::span<const uint8_t> frame(data + 1, size - 1);
  const auto d = io::parse_sent(frame);
  if (!d) return 0;
  STRATA_FUZZ_CHECK(d->payload.empty() ||
                    (d->payload.data() >= frame.data() &&
                     d->payload.data() + d->payload.size() <= frame.data() + frame.size()));
  STRATA_FUZZ_CHECK(d->peer.address.family == base::Family::kV4 ||
                    d->peer.address.family == base::Family::kV6);
  return 0;
}
