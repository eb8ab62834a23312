// The [xdp] settings as plain values (config and the AF_XDP path share them; nothing here
// needs libxdp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::io {

enum class BackendKind : uint8_t { kSockets, kXdp };
enum class XdpMode : uint8_t { kAuto, kNative, kGeneric };
enum class XdpZeroCopy : uint8_t { kAuto, kOn, kOff };

// [xdp]
struct XdpConfig {
  std::vector<std::string> interfaces;  // required with backend = "xdp"
  std::vector<uint32_t> queues;         // empty: every receive queue of each interface
  XdpMode mode = XdpMode::kAuto;
  XdpZeroCopy zerocopy = XdpZeroCopy::kAuto;
  bool busy_poll = false;
  friend bool operator==(const XdpConfig&, const XdpConfig&) = default;
};

}  // namespace strata::io
