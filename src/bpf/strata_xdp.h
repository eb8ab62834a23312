/* What stratad's XDP program (strata_xdp.bpf.c) and its loader (io/xdp_setup.cc) share: the
 * maps' value layouts, the metadata it writes in front of each frame it redirects, and the
 * indexes of its counters. C, so that both the BPF target and C++ include it. */
#ifndef STRATA_BPF_STRATA_XDP_H
#define STRATA_BPF_STRATA_XDP_H

#include <linux/types.h>

#define STRATA_XDP_MAX_PORTS 4
#define STRATA_XDP_MAX_QUEUES 4096
#define STRATA_XDP_MAX_SOCKETS 1024
#define STRATA_XDP_MAX_CPUS 512
#define STRATA_XDP_MAX_LOCALS 1024
/* "strx": the metadata was written for this frame (user space clears it after reading). */
#define STRATA_XDP_META_MAGIC 0x73747278u

/* strata_config[0]. */
struct strata_xdp_config {
  __u16 ports[STRATA_XDP_MAX_PORTS]; /* network order; 0 = unused */
  __u32 v4_prefix;                   /* source bits hashed to pick a socket (0-32) */
  __u32 v6_prefix;                   /* (0-128) */
  __u32 check_local;                 /* 1: redirect only destinations in strata_local4/6 */
};

/* strata_queues[{ifindex, rx_queue_index}]: the sockets of one receive queue in strata_xsks. */
struct strata_xdp_queue_key {
  __u32 ifindex;
  __u32 queue;
};

struct strata_xdp_queue {
  __u32 first; /* index of its first socket */
  __u32 count; /* 0: nothing served on this queue (everything passes) */
};

/* In front of a redirected frame's data (bpf_xdp_adjust_meta). */
struct strata_xdp_meta {
  __u64 rx_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC when the program ran */
  __u32 magic; /* STRATA_XDP_META_MAGIC */
  __u32 reserved;
};
/* The program strata_xdp_head (for kernels that refuse bpf_xdp_adjust_meta) puts the metadata
 * in front of the frame instead: each descriptor then starts this many octets before the
 * Ethernet header, and the metadata sits just before it as with strata_xdp. */
#define STRATA_XDP_HEAD_PREFIX 16

/* strata_counters[cpu].v[...]: what the program did, per CPU (the map is mmap()ed). */
enum strata_xdp_counter {
  STRATA_XDP_REDIRECTED = 0,   /* handed to a socket */
  STRATA_XDP_PASS_OTHER,       /* not NTP for us: other protocol, port or destination */
  STRATA_XDP_PASS_FRAGMENT,    /* IPv4 fragment */
  STRATA_XDP_PASS_IPV6_EXT,    /* IPv6 with an extension header before UDP */
  STRATA_XDP_PASS_CONTROL,     /* NTP mode 6 or 7: the control service reads sockets */
  STRATA_XDP_PASS_NO_SOCKET,   /* no socket for the queue or its map slot: served by sockets */
  STRATA_XDP_NO_META,          /* redirected without a receive timestamp (no metadata room); strata_xdp_head: passed */
  STRATA_XDP_PASS_MALFORMED,   /* headers cut short or inconsistent: the kernel judges it */
  STRATA_XDP_COUNTERS
};

struct strata_xdp_counters {
  __u64 v[8];
};

#endif
