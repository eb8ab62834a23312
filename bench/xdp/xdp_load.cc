// bench/xdp's load generator (see xdp_load.bpf.c): offers NTP requests at a fixed rate from
// many source addresses as XDP frames into a veth, counts the replies that come back, and
// reads the CPU time all CPUs spent meanwhile (/proc/stat). Also the null server (`drop`).
// Run in the client namespace (gen) or the server namespace (drop) by bench/xdp/run.py.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

extern "C" const unsigned char xdp_load_object[];
extern "C" const size_t xdp_load_object_size;

namespace {

struct GenConfig {
  uint32_t ifindex;
  uint32_t clients;
};

bool parse_mac(const std::string& text, uint8_t out[6]) {
  unsigned v[6];
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

// Idle time of all CPUs so far, in nanoseconds: the cpuidle states' residency (microseconds,
// exact), else /proc/stat's idle and iowait (USER_HZ ticks: 10 ms steps, coarse for short
// runs). Busy time over an interval = CPUs x wall time - idle time.
uint64_t idle_ns() {
  uint64_t us = 0;
  bool found = false;
  for (int cpu = 0; cpu < 4096; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu);
    if (::access(base.c_str(), F_OK) != 0) break;
    for (int state = 0; state < 16; ++state) {
      std::ifstream in(base + "/cpuidle/state" + std::to_string(state) + "/time");
      uint64_t v = 0;
      if (!(in >> v)) break;
      us += v;
      found = true;
    }
  }
  if (found) return us * 1000;
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user, nice, system, idle, iowait;
  in >> cpu >> user >> nice >> system >> idle >> iowait;
  return (idle + iowait) * (1'000'000'000ull / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK)));
}

uint64_t counter(int fd, uint32_t index) {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(fd, &index, values.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  return sum;
}

std::vector<uint8_t> request_frame(const uint8_t dst[6], const uint8_t src[6], uint32_t server) {
  std::vector<uint8_t> f(14 + 20 + 8 + 48, 0);
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, src, 6);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[3] = 20 + 8 + 48;
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 16, &server, 4);
  uint8_t* udp = ip + 20;
  udp[2] = 0;
  udp[3] = 123;
  udp[5] = 8 + 48;
  uint8_t* ntp = udp + 8;
  ntp[0] = 0x23;  // NTPv4, mode 3
  ntp[2] = 6;
  ntp[3] = 0xec;
  for (int i = 40; i < 48; ++i) ntp[i] = static_cast<uint8_t>(i);
  return f;
}

volatile std::sig_atomic_t g_stop = 0;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench/xdp load generator and null server (needs root; see bench/xdp/run.py)"};
  app.require_subcommand(1);
  std::string ifname, src_mac, dst_mac, server = "10.77.0.1";
  double rate = 100000, seconds = 3, drain = 0.3;
  uint32_t clients = 65536;
  auto* gen = app.add_subcommand("gen", "offer requests into IFNAME's peer and count replies (JSON out)");
  gen->add_option("--ifname", ifname, "the client veth")->required();
  gen->add_option("--src-mac", src_mac, "its MAC")->required();
  gen->add_option("--dst-mac", dst_mac, "the server veth's MAC")->required();
  gen->add_option("--server", server, "the server's IPv4 address");
  gen->add_option("--rate", rate, "requests per second (0: as fast as it can)");
  gen->add_option("--seconds", seconds, "how long");
  gen->add_option("--clients", clients, "source addresses (from 10.78.0.0)")->check(CLI::Range(1, 65536));
  gen->add_option("--drain", drain, "seconds to wait for the last replies");
  auto* drop = app.add_subcommand("drop", "drop everything arriving on IFNAME until SIGTERM");
  drop->add_option("--ifname", ifname, "the server veth")->required();
  CLI11_PARSE(app, argc, argv);

  libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });
  bpf_object* obj = bpf_object__open_mem(xdp_load_object, xdp_load_object_size, nullptr);
  if (obj == nullptr || bpf_object__load(obj) != 0) {
    std::fprintf(stderr, "xdp_load: cannot load the BPF object: %s (root?)\n", std::strerror(errno));
    return 1;
  }
  const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
  if (ifindex == 0) {
    std::fprintf(stderr, "xdp_load: no interface %s\n", ifname.c_str());
    return 1;
  }
  const auto prog_fd = [&](const char* name) { return bpf_program__fd(bpf_object__find_program_by_name(obj, name)); };
  if (drop->parsed()) {
    const int link = bpf_link_create(prog_fd("xdp_drop"), ifindex, BPF_XDP, nullptr);
    if (link < 0) {
      std::fprintf(stderr, "xdp_load: attach to %s: %s\n", ifname.c_str(), std::strerror(errno));
      return 1;
    }
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::puts("ready");
    std::fflush(stdout);
    while (!g_stop) ::pause();
    ::close(link);
    return 0;
  }

  uint8_t dst[6], src[6];
  if (!parse_mac(dst_mac, dst) || !parse_mac(src_mac, src)) {
    std::fprintf(stderr, "xdp_load: bad MAC address\n");
    return 1;
  }
  uint32_t server_be = 0;
  if (::inet_pton(AF_INET, server.c_str(), &server_be) != 1) {
    std::fprintf(stderr, "xdp_load: bad server address %s\n", server.c_str());
    return 1;
  }
  const int config_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "gen_config"));
  const int counters_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "load_counters"));
  const GenConfig config{static_cast<uint32_t>(ifindex), clients};
  const uint32_t zero = 0;
  bpf_map_update_elem(config_fd, &zero, &config, BPF_ANY);
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  bpf_tc_hook_create(&hook);  // the clsact qdisc (EEXIST is fine)
  bpf_tc_opts tc{};
  tc.sz = sizeof tc;
  tc.prog_fd = prog_fd("tc_sink");
  if (const int e = bpf_tc_attach(&hook, &tc); e != 0) {
    std::fprintf(stderr, "xdp_load: attach the sink to %s: %s\n", ifname.c_str(), std::strerror(-e));
    return 1;
  }
  // Frames redirected into this end reach its peer only through the peer's NAPI, which an
  // XDP program there (stratad's, the null server's) or GRO turns on.
  std::vector<uint8_t> frame = request_frame(dst, src, server_be);
  const int gen_fd = prog_fd("xdp_gen");
  using clock = std::chrono::steady_clock;
  const uint64_t idle_start = idle_ns();
  const auto start = clock::now();
  const auto end = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t offered = 0;
  int errors = 0;
  while (clock::now() < end) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    const uint64_t due = rate > 0 ? static_cast<uint64_t>(rate * elapsed) : offered + 4096;
    if (due > offered) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(due - offered, 1u << 16));
      bpf_test_run_opts opts{};
      opts.sz = sizeof opts;
      opts.data_in = frame.data();
      opts.data_size_in = static_cast<uint32_t>(frame.size());
      opts.repeat = static_cast<int>(n);
      opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
      opts.batch_size = 64;
      if (bpf_prog_test_run_opts(gen_fd, &opts) != 0 && ++errors == 1)
        std::fprintf(stderr, "xdp_load: BPF_PROG_RUN: %s\n", std::strerror(errno));
      offered += n;
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  const double took = std::chrono::duration<double>(clock::now() - start).count();
  std::this_thread::sleep_for(std::chrono::duration<double>(drain));
  const double wall = std::chrono::duration<double>(clock::now() - start).count();
  const double cpus = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN));
  const double idle = static_cast<double>(idle_ns() - idle_start);
  const uint64_t busy = static_cast<uint64_t>(std::max(0.0, cpus * wall * 1e9 - idle));
  const uint64_t generated = counter(counters_fd, 0);
  const uint64_t replies = counter(counters_fd, 1);
  bpf_tc_hook_destroy(&hook);
  std::printf("{\"rate\": %.0f, \"seconds\": %.3f, \"generated\": %llu, \"replies\": %llu, \"busy_ns\": %llu}\n", rate,
              took, static_cast<unsigned long long>(generated), static_cast<unsigned long long>(replies),
              static_cast<unsigned long long>(busy));
  bpf_object__close(obj);
  return errors > 0 ? 1 : 0;
}
