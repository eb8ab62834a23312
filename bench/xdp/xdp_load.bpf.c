// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* bench/xdp's load generator and reply sink (not part of stratad).
 *
 * xdp_gen runs under BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES over one NTP request frame:
 * each run gives the frame the next source address of gen_config.clients (from 10.78.0.0/16
 * up) and the next source port, recomputes the IPv4 header checksum, and redirects it into
 * the client veth, so it reaches the server's veth as an XDP frame: no socket, no skb on the
 * generating side, which the kernel's socket path could not outrun.
 * tc_sink, at the client veth's ingress, counts the server's replies (UDP from port 123) and
 * drops them; everything else (ARP for the socket backend's replies) passes. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct gen_config {
  __u32 ifindex; /* where the frames go (the client veth) */
  __u32 clients; /* source addresses, 10.78.0.0 + 0..clients-1 */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gen_config);
} gen_config SEC(".maps");

/* [0]: frames generated; [1]: replies seen by the sink. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} load_counters SEC(".maps");

static __always_inline __u64* counter(__u32 i) { return bpf_map_lookup_elem(&load_counters, &i); }

SEC("xdp")
int xdp_gen(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u32 zero = 0;
  const struct gen_config* cfg = bpf_map_lookup_elem(&gen_config, &zero);
  __u64* n = counter(0);
  if (!cfg || !n || cfg->clients == 0) return XDP_ABORTED;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  struct udphdr* udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end) return XDP_ABORTED;
  __u64 i = *n;
  *n = i + 1;
  __u32 client = (__u32)(i % cfg->clients);
  ip->saddr = bpf_htonl((10u << 24) | (78u << 16) | (client & 0xffff));
  udp->source = bpf_htons((__u16)(1024 + (i * 7919) % 64000));
  udp->check = 0; /* IPv4: no checksum */
  ip->check = 0;
  __u32 sum = 0;
  __u16* w = (__u16*)ip;
#pragma unroll
  for (int k = 0; k < 10; k++) sum += w[k];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip->check = (__u16)~sum;
  return bpf_redirect(cfg->ifindex, 0);
}

/* At tc ingress, not XDP: an XDP program on the client end would make veth copy every reply
 * skb into an XDP buffer first (their headroom is too small), a cost of the sink, not of the
 * server. */
SEC("tc")
int tc_sink(struct __sk_buff* skb) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
    return 0; /* TC_ACT_OK */
  struct udphdr* udp = (void*)ip + ip->ihl * 4;
  if ((void*)(udp + 1) > end || udp->source != bpf_htons(123)) return 0;
  __u64* n = counter(1);
  if (n) *n += 1;
  return 2; /* TC_ACT_SHOT */
}

/* The null server: drops every request on the server's veth (the generator's own cost). */
SEC("xdp")
int xdp_drop(struct xdp_md* ctx) { return XDP_DROP; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
