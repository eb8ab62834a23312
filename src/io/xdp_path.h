// Setting up the AF_XDP path: loads stratad's XDP program (src/bpf/, embedded in the binary),
// attaches it to each configured interface, makes the UMEMs and AF_XDP sockets, fills the
// program's maps, and hands each worker its sockets (io/xdp_backend.h). Done as root, before
// the privilege drop; after it nothing here needs a capability.
//
// The fallback ladder, each step logged once per interface: native XDP, else generic
// ([xdp] mode = "auto"); zero-copy, else copy mode (zerocopy = "auto"); an interface where
// neither works (no such interface, MTU too large for the frames, another program attached,
// missing capability, attach or bind failure) is served by the UDP sockets alone, which
// always run beside the AF_XDP sockets for what the program passes.
//
// The program is attached through a BPF link, which the kernel removes when its last file
// descriptor closes: at exit, and also when stratad crashes. A program of ours attached the
// old way (netlink) is removed at the next start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/net.h"
#include "io/xdp_backend.h"
#include "io/xdp_options.h"
#include "stats/counters.h"

struct bpf_object;

namespace strata::io {

struct XdpOptions {
  std::vector<std::string> interfaces;
  std::vector<uint32_t> queues;  // empty: every receive queue of each interface
  XdpMode mode = XdpMode::kAuto;
  XdpZeroCopy zerocopy = XdpZeroCopy::kAuto;
  bool busy_poll = false;
  std::vector<uint16_t> ports;           // the NTP ports served (at most 4)
  std::vector<base::IpAddress> locals;   // empty: every address of the host at start
  int v4_prefix = 24;                    // source bits that pick a worker (the limiter's)
  int v6_prefix = 56;
  unsigned workers = 1;
  size_t batch = 64;
  uint32_t frames = 16384;     // per queue (power of two): 32 MiB of 2 KiB frames
  uint32_t frame_size = 2048;  // octets per frame (2048 or 4096)
  uint32_t ring = 8192;        // RX and TX descriptors per socket (a burst of 40 ms at 200k/s)
  int omit_worker = -1;        // tests: leave this worker's sockets out of the program's map
};

const char* xdp_mode_name(XdpMode m);
const char* xdp_zerocopy_name(XdpZeroCopy z);

class XdpPath {
 public:
  // Null when no interface could be served: the reasons are logged, the sockets serve all.
  static std::unique_ptr<XdpPath> open(const XdpOptions& options);
  ~XdpPath();
  XdpPath(const XdpPath&) = delete;
  XdpPath& operator=(const XdpPath&) = delete;

  // The AF_XDP sockets of worker `w` (possibly none: then its backend only has its sockets).
  const std::vector<XdpSocket*>& sockets_of(unsigned w) const { return per_worker_[w]; }
  // The program's counters (xdp_prog_*), summed over CPUs, added to `totals`.
  void add_counters(stats::CounterTotals& totals) const;
  // "vs: native XDP, copy mode, queues 0 (2 sockets)"; one entry per interface served.
  const std::vector<std::string>& served() const { return served_; }

 private:
  XdpPath() = default;
  struct Attached {
    std::string name;
    int ifindex = 0;
    int link_fd = -1;
  };
  bool serve_interface(const XdpOptions& o, const std::string& name);
  bool make_queue(const XdpOptions& o, const std::string& name, int ifindex, uint32_t queue,
                  const std::vector<unsigned>& workers, bool zerocopy, std::string& error);

  bpf_object* object_ = nullptr;
  int prog_fd_ = -1;
  uint32_t frame_prefix_ = 0;  // STRATA_XDP_HEAD_PREFIX with strata_xdp_head, else 0
  int xsks_fd_ = -1, queues_fd_ = -1, local4_fd_ = -1, local6_fd_ = -1;
  const void* counters_ = nullptr;  // the program's mmap()ed counter map
  size_t counters_size_ = 0;
  uint32_t next_index_ = 0;         // the next free slot of the socket map
  std::vector<Attached> attached_;
  std::vector<std::unique_ptr<XdpQueue>> queues_;
  std::vector<std::unique_ptr<XdpSocket>> sockets_;
  std::vector<std::vector<XdpSocket*>> per_worker_;
  std::vector<std::string> served_;
};

}  // namespace strata::io
