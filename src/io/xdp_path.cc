// Loading, attaching and wiring the AF_XDP path (see xdp_path.h).
#include "io/xdp_path.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "bpf/strata_xdp.h"

// The program's object file, built by src/bpf/CMakeLists.txt and embedded (strata_xdp_object.cc).
extern "C" const unsigned char strata_xdp_object[];
extern "C" const size_t strata_xdp_object_size;

namespace strata::io {

using base::LogLevel;

namespace {

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif
// setsockopt(SOL_XDP) of kernels 6.17+: descriptors one transmit call may send in copy mode
// (32 before). Not in Debian 12's headers.
constexpr int kXdpMaxTxSkbBudget = 9;
// Room the kernel keeps in front of a frame (XDP_PACKET_HEADROOM) and what a frame may carry
// past the MTU: Ethernet and two VLAN tags.
constexpr uint32_t kXdpHeadroom = 256;
constexpr uint32_t kLinkOverhead = 14 + 8;

std::string errno_text(int e) { return std::strerror(e < 0 ? -e : e); }

int read_int(const std::string& path, int fallback) {
  std::ifstream in(path);
  int v = fallback;
  if (!(in >> v)) return fallback;
  return v;
}

// The interface's receive queues (0..n-1), from sysfs.
uint32_t rx_queue_count(const std::string& name) {
  std::error_code ec;
  uint32_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net/" + name + "/queues", ec))
    if (e.path().filename().string().rfind("rx-", 0) == 0) ++n;
  return n == 0 ? 1 : n;
}

// Our own program left attached the old way (netlink) by an earlier stratad: removed. Returns
// "" when the interface is free (or was freed), else why it is not ours to take.
std::string free_interface(int ifindex, const std::string& name) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof q;
  if (bpf_xdp_query(ifindex, 0, &q) != 0 || q.prog_id == 0) return "";
  const int fd = bpf_prog_get_fd_by_id(q.prog_id);
  std::string prog = "?";
  if (fd >= 0) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) prog = info.name;
    ::close(fd);
  }
  if (prog != "strata_xdp")
    return "XDP program '" + prog + "' (id " + std::to_string(q.prog_id) + ") is attached";
  const uint32_t mode = q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE
                        : q.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE
                                                           : 0;
  if (const int e = bpf_xdp_detach(ifindex, mode, nullptr); e != 0)
    return "stratad's program (id " + std::to_string(q.prog_id) + ") is attached by a running stratad (" +
           errno_text(e) + ")";
  base::log(LogLevel::kInfo, "xdp {}: removed stratad's program (id {}) an earlier run left attached", name,
            q.prog_id);
  return "";
}

// Every address of this host (its network namespace), VLAN and other stacked interfaces'
// included: with a wildcard listen address, all of them are ours.
void add_host_addresses(std::vector<base::IpAddress>& out) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (const auto ep = base::Endpoint::from_sockaddr(a->ifa_addr)) out.push_back(ep->address);
  }
  ::freeifaddrs(list);
}

}  // namespace

const char* xdp_mode_name(XdpMode m) {
  switch (m) {
    case XdpMode::kNative: return "native";
    case XdpMode::kGeneric: return "generic";
    default: return "auto";
  }
}

const char* xdp_zerocopy_name(XdpZeroCopy z) {
  switch (z) {
    case XdpZeroCopy::kOn: return "on";
    case XdpZeroCopy::kOff: return "off";
    default: return "auto";
  }
}

std::unique_ptr<XdpPath> XdpPath::open(const XdpOptions& o) {
  std::unique_ptr<XdpPath> path(new XdpPath);
  path->per_worker_.resize(o.workers);
  const auto give_up = [](const std::string& why) {
    base::log(LogLevel::kWarning, "xdp: {}: serving through sockets only", why);
    return nullptr;
  };
  libbpf_set_print([](enum libbpf_print_level level, const char* format, va_list args) -> int {
    if (level != LIBBPF_WARN) return 0;
    char text[512];
    std::vsnprintf(text, sizeof text, format, args);
    std::string line(text);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    base::log(LogLevel::kDebug, "libbpf: {}", line);
    return 0;
  });
  static_assert(STRATA_XDP_HEAD_PREFIX == sizeof(strata_xdp_meta));
  // The object holds two programs: strata_xdp (the receive timestamp in the frame's metadata,
  // bpf_xdp_adjust_meta) and strata_xdp_head (the same in a prefix, bpf_xdp_adjust_head),
  // for kernels whose verifier refuses bpf_xdp_adjust_meta to XDP programs (6.18.44 here
  // does). The first that loads is used; both are the same code otherwise.
  const auto load = [&](const char* name) -> int {
    if (path->object_ != nullptr) bpf_object__close(path->object_);
    bpf_object_open_opts open_opts{};
    open_opts.sz = sizeof open_opts;
    open_opts.object_name = "strata_xdp";
    path->object_ = bpf_object__open_mem(strata_xdp_object, strata_xdp_object_size, &open_opts);
    if (path->object_ == nullptr) return -errno;
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, path->object_) {
      bpf_program__set_autoload(p, std::strcmp(bpf_program__name(p), name) == 0);
    }
    return bpf_object__load(path->object_);
  };
  const char* program = "strata_xdp";
  int e = load(program);
  if (e == -EINVAL) {
    program = "strata_xdp_head";
    e = load(program);
    if (e == 0) {
      path->frame_prefix_ = STRATA_XDP_HEAD_PREFIX;
      base::log(LogLevel::kInfo, "xdp: this kernel refuses bpf_xdp_adjust_meta to XDP programs: the receive "
                                 "timestamp travels in a {}-octet prefix (bpf_xdp_adjust_head)",
                STRATA_XDP_HEAD_PREFIX);
    }
  }
  if (path->object_ == nullptr) return give_up("cannot open the embedded program: " + errno_text(errno));
  if (e != 0)
    return give_up("cannot load the program (" + errno_text(e) + "; it needs CAP_BPF and CAP_NET_ADMIN, or root)");
  bpf_program* prog = bpf_object__find_program_by_name(path->object_, program);
  if (prog == nullptr) return give_up(std::string("the embedded object has no ") + program + " program");
  path->prog_fd_ = bpf_program__fd(prog);
  const auto map_fd = [&](const char* name) {
    const bpf_map* m = bpf_object__find_map_by_name(path->object_, name);
    return m == nullptr ? -1 : bpf_map__fd(m);
  };
  path->xsks_fd_ = map_fd("strata_xsks");
  path->queues_fd_ = map_fd("strata_queues");
  path->local4_fd_ = map_fd("strata_local4");
  path->local6_fd_ = map_fd("strata_local6");
  const int config_fd = map_fd("strata_config");
  const int counters_fd = map_fd("strata_counters");
  if (path->xsks_fd_ < 0 || path->queues_fd_ < 0 || path->local4_fd_ < 0 || path->local6_fd_ < 0 ||
      config_fd < 0 || counters_fd < 0)
    return give_up("the embedded object lacks a map");

  strata_xdp_config config{};
  for (size_t i = 0; i < o.ports.size() && i < STRATA_XDP_MAX_PORTS; ++i) config.ports[i] = htons(o.ports[i]);
  config.v4_prefix = static_cast<uint32_t>(std::clamp(o.v4_prefix, 0, 32));
  config.v6_prefix = static_cast<uint32_t>(std::clamp(o.v6_prefix, 0, 128));
  config.check_local = 1;
  std::vector<base::IpAddress> locals = o.locals;
  if (locals.empty()) add_host_addresses(locals);
  for (const base::IpAddress& a : locals) {
    const uint8_t one = 1;
    if (a.family == base::Family::kV4)
      bpf_map_update_elem(path->local4_fd_, a.bytes.data(), &one, BPF_ANY);
    else
      bpf_map_update_elem(path->local6_fd_, a.bytes.data(), &one, BPF_ANY);
  }
  const uint32_t zero = 0;
  if (bpf_map_update_elem(config_fd, &zero, &config, BPF_ANY) != 0)
    return give_up("cannot configure the program: " + errno_text(errno));
  path->counters_size_ = sizeof(strata_xdp_counters) * STRATA_XDP_MAX_CPUS;
  void* counters = ::mmap(nullptr, path->counters_size_, PROT_READ, MAP_SHARED, counters_fd, 0);
  path->counters_ = counters == MAP_FAILED ? nullptr : counters;

  for (const std::string& name : o.interfaces) path->serve_interface(o, name);
  if (path->served_.empty()) return give_up("no interface could be served");
  return path;
}

bool XdpPath::serve_interface(const XdpOptions& o, const std::string& name) {
  const auto refuse = [&](const std::string& why) {
    base::log(LogLevel::kWarning, "xdp {}: {}: that interface is served through sockets only", name, why);
    return false;
  };
  const int ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
  if (ifindex == 0) return refuse("no such interface");
  const int mtu = read_int("/sys/class/net/" + name + "/mtu", 1500);
  if (static_cast<uint32_t>(mtu) + kLinkOverhead + kXdpHeadroom > o.frame_size)
    return refuse(fmt::format("MTU {} is too large for XDP frames of {} octets", mtu, o.frame_size));
  if (const std::string busy = free_interface(ifindex, name); !busy.empty()) return refuse(busy);

  // Native, else generic (mode = "auto").
  std::vector<std::pair<uint32_t, const char*>> modes;
  if (o.mode != XdpMode::kGeneric) modes.push_back({XDP_FLAGS_DRV_MODE, "native"});
  if (o.mode != XdpMode::kNative) modes.push_back({XDP_FLAGS_SKB_MODE, "generic"});
  int link = -1;
  const char* mode_name = "";
  std::string last_error;
  for (const auto& [flags, text] : modes) {
    bpf_link_create_opts link_opts{};
    link_opts.sz = sizeof link_opts;
    link_opts.flags = flags;
    link = bpf_link_create(prog_fd_, ifindex, BPF_XDP, &link_opts);
    if (link >= 0) {
      mode_name = text;
      break;
    }
    const int e = errno;
    last_error = fmt::format("{} XDP: {}{}", text, errno_text(e),
                             e == ERANGE ? " (the peer's MTU is too large for XDP)" : "");
    if (flags == XDP_FLAGS_DRV_MODE && modes.size() > 1)
      base::log(LogLevel::kWarning, "xdp {}: {}: trying generic XDP", name, last_error);
  }
  if (link < 0) return refuse(last_error);
  attached_.push_back({name, ifindex, link});

  // The queues and, for each, the workers with a socket on it.
  const uint32_t available = rx_queue_count(name);
  std::vector<uint32_t> queues;
  if (o.queues.empty()) {
    for (uint32_t q = 0; q < available; ++q) queues.push_back(q);
  } else {
    for (uint32_t q : o.queues) {
      if (q < available) queues.push_back(q);
      else base::log(LogLevel::kWarning, "xdp {}: no receive queue {} (it has {})", name, q, available);
    }
  }
  const auto unwind = [&](const std::string& why) {
    ::close(attached_.back().link_fd);
    attached_.pop_back();
    return refuse(why);
  };
  if (queues.empty()) return unwind("no receive queue to serve");
  const size_t nq = queues.size();
  bool zerocopy = o.zerocopy != XdpZeroCopy::kOff;
  std::string detail;
  for (size_t i = 0; i < nq; ++i) {
    std::vector<unsigned> workers;
    if (nq >= o.workers) workers.push_back(static_cast<unsigned>(i % o.workers));
    else
      for (unsigned w = static_cast<unsigned>(i); w < o.workers; w += static_cast<unsigned>(nq)) workers.push_back(w);
    std::string error;
    bool ok = make_queue(o, name, ifindex, queues[i], workers, zerocopy, error);
    if (!ok && zerocopy && o.zerocopy == XdpZeroCopy::kAuto) {
      base::log(LogLevel::kWarning, "xdp {}: zero-copy unavailable ({}): copy mode", name, error);
      zerocopy = false;
      ok = make_queue(o, name, ifindex, queues[i], workers, false, error);
    }
    if (!ok) {
      // Sockets of this interface already made stay in the worker lists but their queues get
      // no traffic once the link is gone: take them out again.
      for (auto& list : per_worker_)
        list.erase(std::remove_if(list.begin(), list.end(), [&](XdpSocket* s) { return s->queue->ifindex == ifindex; }),
                   list.end());
      return unwind(error);
    }
    detail += fmt::format("{}{} ({} socket{})", i == 0 ? "" : ", ", queues[i], workers.size(),
                          workers.size() == 1 ? "" : "s");
  }
  served_.push_back(fmt::format("{}: {} XDP, {}, queue{} {}", name, mode_name,
                                zerocopy ? "zero-copy" : "copy mode", nq == 1 ? "" : "s", detail));
  return true;
}

bool XdpPath::make_queue(const XdpOptions& o, const std::string& name, int ifindex, uint32_t queue,
                         const std::vector<unsigned>& workers, bool zerocopy, std::string& error) {
  auto q = std::make_unique<XdpQueue>();
  q->interface = name;
  q->ifindex = ifindex;
  q->queue = queue;
  q->frames = o.frames;
  q->frame_size = o.frame_size;
  q->prefix = frame_prefix_;
  q->shared = workers.size() > 1;
  q->zerocopy = zerocopy;
  q->area_size = size_t{o.frames} * o.frame_size;
  void* area = ::mmap(nullptr, q->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED) {
    error = "UMEM of " + std::to_string(q->area_size) + " octets: " + errno_text(errno);
    return false;
  }
  q->area = area;
  xsk_umem_config ucfg{};
  ucfg.fill_size = o.frames;  // the fill ring holds every frame: a frame out always fits back
  ucfg.comp_size = o.frames;
  ucfg.frame_size = o.frame_size;
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  const auto fail = [&](std::vector<std::unique_ptr<XdpSocket>>& made, const std::string& why) {
    for (auto& s : made) xsk_socket__delete(s->xsk);
    if (q->umem != nullptr) xsk_umem__delete(q->umem);
    ::munmap(q->area, q->area_size);
    error = why;
    return false;
  };
  std::vector<std::unique_ptr<XdpSocket>> made;
  if (const int e = xsk_umem__create(&q->umem, q->area, q->area_size, &q->fill, &q->completion, &ucfg); e != 0) {
    q->umem = nullptr;
    return fail(made, "UMEM registration: " + errno_text(e));
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    auto s = std::make_unique<XdpSocket>();
    s->queue = q.get();
    s->reports_fill = i == 0;
    xsk_socket_config scfg{};
    scfg.rx_size = o.ring;
    scfg.tx_size = o.ring;
    scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    scfg.xdp_flags = 0;
    scfg.bind_flags = static_cast<uint16_t>(XDP_USE_NEED_WAKEUP | (zerocopy ? XDP_ZEROCOPY : XDP_COPY));
    // EBUSY: the queue is still held by sockets just closed (a restart: the kernel releases
    // a UMEM's hold on its queue in a deferred work item), so it is tried again for up to 2 s.
    int e = 0;
    for (int attempt = 0;; ++attempt) {
      e = xsk_socket__create_shared(&s->xsk, name.c_str(), queue, q->umem, &s->rx, &s->tx, &q->fill,
                                    &q->completion, &scfg);
      if (e == 0 || (e != -EBUSY && e != EBUSY) || attempt == 20) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (e != 0) return fail(made, fmt::format("AF_XDP socket on queue {}: {}", queue, errno_text(e)));
    s->fd = xsk_socket__fd(s->xsk);
    const int budget = static_cast<int>(o.ring);
    ::setsockopt(s->fd, SOL_XDP, kXdpMaxTxSkbBudget, &budget, sizeof budget);  // 6.17+; else 32 per call
    if (o.busy_poll) {
      const int one = 1, usecs = 20, batch = static_cast<int>(o.batch);
      if (::setsockopt(s->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof one) != 0 ||
          ::setsockopt(s->fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof usecs) != 0 ||
          ::setsockopt(s->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &batch, sizeof batch) != 0)
        base::log(LogLevel::kWarning, "xdp {}: busy polling unavailable: {}", name, errno_text(errno));
      else
        s->busy_poll = true;
    }
    made.push_back(std::move(s));
  }
  // Every frame into the fill ring.
  uint32_t at = 0;
  if (xsk_ring_prod__reserve(&q->fill, o.frames, &at) != o.frames)
    return fail(made, "the fill ring takes fewer frames than the UMEM has");
  for (uint32_t i = 0; i < o.frames; ++i) *xsk_ring_prod__fill_addr(&q->fill, at + i) = uint64_t{i} * o.frame_size;
  xsk_ring_prod__submit(&q->fill, o.frames);
  // The sockets into the program's map, then the queue's entry that makes it use them.
  const uint32_t first = next_index_;
  for (size_t i = 0; i < made.size(); ++i) {
    made[i]->map_index = first + static_cast<uint32_t>(i);
    if (made[i]->map_index >= STRATA_XDP_MAX_SOCKETS) return fail(made, "more AF_XDP sockets than the map holds");
    if (static_cast<int>(workers[i]) == o.omit_worker) {
      base::log(LogLevel::kWarning, "xdp {}: worker {}'s socket left out of the program's map (test hook)", name,
                workers[i]);
      continue;
    }
    if (bpf_map_update_elem(xsks_fd_, &made[i]->map_index, &made[i]->fd, BPF_ANY) != 0)
      return fail(made, "socket map: " + errno_text(errno));
  }
  const strata_xdp_queue_key key{static_cast<uint32_t>(ifindex), queue};
  const strata_xdp_queue value{first, static_cast<uint32_t>(made.size())};
  if (bpf_map_update_elem(queues_fd_, &key, &value, BPF_ANY) != 0) return fail(made, "queue map: " + errno_text(errno));
  next_index_ += static_cast<uint32_t>(made.size());
  for (size_t i = 0; i < made.size(); ++i) {
    per_worker_[workers[i]].push_back(made[i].get());
    sockets_.push_back(std::move(made[i]));
  }
  queues_.push_back(std::move(q));
  return true;
}

void XdpPath::add_counters(stats::CounterTotals& totals) const {
  if (counters_ == nullptr) return;
  static constexpr stats::Counter kOf[STRATA_XDP_COUNTERS] = {
      stats::Counter::xdp_prog_redirected,     stats::Counter::xdp_prog_pass_other,
      stats::Counter::xdp_prog_pass_fragment,  stats::Counter::xdp_prog_pass_ipv6_ext,
      stats::Counter::xdp_prog_pass_control,   stats::Counter::xdp_prog_pass_no_socket,
      stats::Counter::xdp_prog_no_meta,        stats::Counter::xdp_prog_pass_malformed,
  };
  const auto* cpus = static_cast<const volatile strata_xdp_counters*>(counters_);
  for (size_t c = 0; c < STRATA_XDP_MAX_CPUS; ++c)
    for (size_t i = 0; i < STRATA_XDP_COUNTERS; ++i) totals[stats::index(kOf[i])] += cpus[c].v[i];
}

XdpPath::~XdpPath() {
  // The links first: no more frames for the sockets.
  for (const Attached& a : attached_) ::close(a.link_fd);
  for (auto& s : sockets_) xsk_socket__delete(s->xsk);
  for (auto& q : queues_) {
    xsk_umem__delete(q->umem);
    ::munmap(q->area, q->area_size);
  }
  if (counters_ != nullptr) ::munmap(const_cast<void*>(counters_), counters_size_);
  if (object_ != nullptr) bpf_object__close(object_);
}

}  // namespace strata::io
