// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* stratad's XDP program: hands NTP requests for this server to its AF_XDP sockets and passes
 * everything else to the kernel untouched.
 *
 * Redirected: unicast Ethernet (up to two VLAN tags), IPv4 without fragmentation or IPv6 with
 * UDP as the first next header, to one of the configured ports and (with check_local) to one
 * of our addresses, with an NTP mode other than 6 and 7. Everything else passes: ARP, ICMP,
 * ICMPv6 and neighbour discovery, TCP (NTS-KE, metrics), other UDP ports, fragments, IPv6
 * extension headers, mode 6/7 (the control service reads the sockets) and anything whose
 * headers are cut short (the kernel counts and drops what is really broken). The program
 * never drops and never answers.
 *
 * The socket is chosen as the socket path's reuseport program chooses (io/steering.cc): a hash
 * of the source address's first v4_prefix / v6_prefix bits, among the receive queue's sockets,
 * so all of one rate-limit prefix meets one worker. The receive time (CLOCK_MONOTONIC) goes in
 * 16 octets of metadata in front of the frame. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "strata_xdp.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct strata_xdp_config);
} strata_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, STRATA_XDP_MAX_QUEUES);
  __type(key, struct strata_xdp_queue_key);
  __type(value, struct strata_xdp_queue);
} strata_queues SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, STRATA_XDP_MAX_SOCKETS);
  __type(key, __u32);
  __type(value, __u32);
} strata_xsks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, STRATA_XDP_MAX_LOCALS);
  __type(key, __u32);
  __type(value, __u8);
} strata_local4 SEC(".maps");

struct in6_key {
  __u8 bytes[16];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, STRATA_XDP_MAX_LOCALS);
  __type(key, struct in6_key);
  __type(value, __u8);
} strata_local6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, STRATA_XDP_MAX_CPUS);
  __type(key, __u32);
  __type(value, struct strata_xdp_counters);
} strata_counters SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 proto;
};

#define K_MULTIPLIER 0x9E3779B1u

static __always_inline void count(int which) {
  __u32 cpu = bpf_get_smp_processor_id();
  struct strata_xdp_counters* c = bpf_map_lookup_elem(&strata_counters, &cpu);
  /* XDP runs with preemption off, one program at a time per CPU: a plain add is enough. */
  if (c && which >= 0 && which < STRATA_XDP_COUNTERS) c->v[which]++;
}

static __always_inline int pass(int why) {
  count(why);
  return XDP_PASS;
}

/* The bits of 32-bit word `word` (0: most significant) that a prefix keeps (io/steering.cc). */
static __always_inline __u32 word_mask(__u32 prefix, __u32 word) {
  int bits = (int)prefix - 32 * (int)word;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffffu;
  return 0xffffffffu << (32 - bits);
}

static __always_inline __u32 hash_word(__u32 h, __u32 word_be, __u32 mask) {
  return ((bpf_ntohl(word_be) & mask) ^ h) * K_MULTIPLIER;
}

/* `head`: the kernel refuses bpf_xdp_adjust_meta() to this program type (some kernels do,
 * 6.18.44 among them): the metadata then goes in front of the frame with bpf_xdp_adjust_head()
 * and user space skips STRATA_XDP_HEAD_PREFIX octets of each descriptor. */
static __always_inline int handle(struct xdp_md* ctx, const int head) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  __u32 key = 0;
  const struct strata_xdp_config* cfg = bpf_map_lookup_elem(&strata_config, &key);
  if (!cfg) return XDP_PASS;

  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
  if (eth->h_dest[0] & 1) return pass(STRATA_XDP_PASS_OTHER); /* broadcast, multicast */
  __u16 proto = eth->h_proto;
  void* l3 = eth + 1;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr* v = l3;
    if ((void*)(v + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
    proto = v->proto;
    l3 = v + 1;
  }

  struct udphdr* udp;
  __u32 h = 0;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = l3;
    if ((void*)(ip + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
    if (ip->version != 4 || ip->ihl < 5) return pass(STRATA_XDP_PASS_MALFORMED);
    if (ip->protocol != IPPROTO_UDP) return pass(STRATA_XDP_PASS_OTHER);
    if (ip->frag_off & bpf_htons(0x3fff)) return pass(STRATA_XDP_PASS_FRAGMENT); /* MF, offset */
    udp = (void*)ip + ip->ihl * 4;
    if ((void*)(udp + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
    if (cfg->check_local) {
      __u32 dst = ip->daddr;
      if (!bpf_map_lookup_elem(&strata_local4, &dst)) return pass(STRATA_XDP_PASS_OTHER);
    }
    h = hash_word(h, ip->saddr, word_mask(cfg->v4_prefix, 0));
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = l3;
    if ((void*)(ip6 + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
    if (ip6->version != 6) return pass(STRATA_XDP_PASS_MALFORMED);
    if (ip6->nexthdr != IPPROTO_UDP) {
      /* Extension headers (hop-by-hop, routing, fragment, destination options) are left
       * to the kernel; so are TCP, ICMPv6 and everything else. */
      __u8 n = ip6->nexthdr;
      if (n == 0 || n == 43 || n == 44 || n == 60 || n == 51 || n == 50 || n == 135 || n == 139 || n == 140)
        return pass(STRATA_XDP_PASS_IPV6_EXT);
      return pass(STRATA_XDP_PASS_OTHER);
    }
    udp = (void*)(ip6 + 1);
    if ((void*)(udp + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
    if (cfg->check_local) {
      struct in6_key dst;
      __builtin_memcpy(dst.bytes, &ip6->daddr, 16);
      if (!bpf_map_lookup_elem(&strata_local6, &dst)) return pass(STRATA_XDP_PASS_OTHER);
    }
#pragma unroll
    for (__u32 w = 0; w < 4; w++) {
      __u32 mask = word_mask(cfg->v6_prefix, w);
      if (mask == 0) break;
      h = hash_word(h, ip6->saddr.in6_u.u6_addr32[w], mask);
    }
  } else {
    return pass(STRATA_XDP_PASS_OTHER); /* ARP, LLDP, ... */
  }

  int ours = 0;
#pragma unroll
  for (int i = 0; i < STRATA_XDP_MAX_PORTS; i++)
    if (cfg->ports[i] != 0 && udp->dest == cfg->ports[i]) ours = 1;
  if (!ours) return pass(STRATA_XDP_PASS_OTHER);
  __u8* ntp = (__u8*)(udp + 1);
  if ((void*)(ntp + 1) > data_end) return pass(STRATA_XDP_PASS_MALFORMED);
  __u8 mode = *ntp & 7;
  if (mode == 6 || mode == 7) return pass(STRATA_XDP_PASS_CONTROL);

  struct strata_xdp_queue_key qk = {ctx->ingress_ifindex, ctx->rx_queue_index};
  const struct strata_xdp_queue* q = bpf_map_lookup_elem(&strata_queues, &qk);
  if (!q || q->count == 0) return pass(STRATA_XDP_PASS_NO_SOCKET);
  __u32 index = q->first + (((h >> 16) ^ h) % q->count);

  /* The receive time, as close to the wire as this program gets. */
  __u64 now = bpf_ktime_get_ns();
  if (head) {
    /* No room in front (never seen: AF_XDP keeps 256 octets of headroom): the kernel serves
     * it, since user space would cut the prefix off a frame that has none. */
    if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct strata_xdp_meta)) != 0) return pass(STRATA_XDP_NO_META);
    struct strata_xdp_meta* m = (void*)(long)ctx->data;
    if ((void*)(m + 1) > (void*)(long)ctx->data_end) return XDP_ABORTED; /* cannot happen: the frame follows */
    m->rx_ns = now;
    m->magic = STRATA_XDP_META_MAGIC;
    m->reserved = 0;
    long verdict = bpf_redirect_map(&strata_xsks, index, XDP_PASS);
    if (verdict == XDP_REDIRECT) {
      count(STRATA_XDP_REDIRECTED);
      return XDP_REDIRECT;
    }
    bpf_xdp_adjust_head(ctx, (int)sizeof(struct strata_xdp_meta)); /* the frame as it came */
    return pass(STRATA_XDP_PASS_NO_SOCKET);
  }
  if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct strata_xdp_meta)) == 0) {
    void* meta = (void*)(long)ctx->data_meta;
    void* start = (void*)(long)ctx->data;
    struct strata_xdp_meta* m = meta;
    if ((void*)(m + 1) <= start) {
      m->rx_ns = now;
      m->magic = STRATA_XDP_META_MAGIC;
      m->reserved = 0;
    }
  } else {
    count(STRATA_XDP_NO_META);
  }
  long verdict = bpf_redirect_map(&strata_xsks, index, XDP_PASS);
  count(verdict == XDP_REDIRECT ? STRATA_XDP_REDIRECTED : STRATA_XDP_PASS_NO_SOCKET);
  return (int)verdict;
}

SEC("xdp")
int strata_xdp(struct xdp_md* ctx) { return handle(ctx, 0); }

SEC("xdp")
int strata_xdp_head(struct xdp_md* ctx) { return handle(ctx, 1); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
