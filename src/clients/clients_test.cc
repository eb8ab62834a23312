// Tests of the client table, its LRU index, the rate limiter (statistical, fixed seeds) and
// the per-worker tracker.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include <atomic>
#include <cmath>
#include <thread>

#include "clients/client_table.h"
#include "clients/limiter.h"
#include "clients/lru_index.h"
#include "clients/tracker.h"
#include "clients/zeroed_array.h"

namespace strata::clients {
namespace {

constexpr int64_t kSec = 1'000'000'000;

base::IpAddress ip(const char* text) { return *base::IpAddress::parse(text); }

TEST(AddressKey, MapsIpv4AndCutsPrefixes) {
  const AddressKey a = AddressKey::from(ip("192.0.2.77"));
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.address(), ip("192.0.2.77"));
  EXPECT_EQ(a.prefix(24, 64).address(), ip("192.0.2.0"));
  EXPECT_EQ(a.prefix(32, 64), a);
  const AddressKey b = AddressKey::from(ip("2001:db8:1:2:3:4:5:6"));
  EXPECT_FALSE(b.is_v4());
  EXPECT_EQ(b.prefix(24, 64).address(), ip("2001:db8:1:2::"));
  EXPECT_EQ(b.prefix(24, 56).address(), ip("2001:db8:1::"));
  EXPECT_EQ(b.prefix(24, 128), b);
  EXPECT_NE(hash_key(a, 1), hash_key(a, 2));
}

TEST(AddressKey, PrefixesOfEveryLengthMatchABitByBitCut) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 50; ++round) {
    base::IpAddress a;
    a.family = round % 2 ? base::Family::kV6 : base::Family::kV4;
    for (auto& b : a.bytes) b = static_cast<uint8_t>(rng());
    const AddressKey k = AddressKey::from(a);
    for (int bits = -1; bits <= 129; ++bits) {
      const int keep = std::clamp(k.is_v4() ? 96 + bits : bits, 0, 128);
      AddressKey want = k;
      for (int i = 0; i < 128; ++i)
        if (i >= keep) want.bytes[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
      ASSERT_EQ(k.prefix(bits, bits), want) << bits;
    }
  }
}

TEST(ZeroedArray, GrowsInPlaceKeepingContents) {
  for (const Pages pages : {Pages::kSmall, Pages::kHuge}) {
    ZeroedArray<uint64_t> a(1000, pages);
    EXPECT_EQ(a.size(), 1000u);
    EXPECT_EQ(a.mapped_bytes() % (pages == Pages::kHuge ? (2u << 20) : 4096u), 0u);
    if (pages == Pages::kHuge) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % (2u << 20), 0u);
    }
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i], 0u);
      a[i] = i * 7 + 1;
    }
    // Past the mapping (2 MiB = 262,144 elements for huge pages), twice.
    for (const size_t n : {size_t{600000}, size_t{2000000}}) {
      const size_t before = a.size();
      a.grow(n);
      ASSERT_EQ(a.size(), n);
      EXPECT_GE(a.mapped_bytes(), n * sizeof(uint64_t));
      if (pages == Pages::kHuge) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % (2u << 20), 0u);
    }
      for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(a[i], i * 7 + 1);
      for (size_t i = 1000; i < n; i += 4099) ASSERT_EQ(a[i], 0u);
      EXPECT_EQ(a[n - 1], 0u);
      a[n - 1] = 5;
      EXPECT_EQ(a[before - 1], before == 1000 ? 999u * 7 + 1 : 5u);
    }
    a.grow(10);  // never shrinks
    EXPECT_EQ(a.size(), 2000000u);
    ZeroedArray<uint64_t> b(std::move(a));
    EXPECT_EQ(b.size(), 2000000u);
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(b[999], 999u * 7 + 1);
  }
}

TEST(LruIndex, KeepsOrderAndFreesSlots) {
  LruIndex idx(3);
  std::vector<uint64_t> key_of(3);
  auto find = [&](uint64_t k) { return idx.find(k, [&](uint32_t s) { return key_of[s] == k; }); };
  for (uint64_t k : {10, 11, 12}) {
    const uint32_t s = idx.insert(k);
    ASSERT_NE(s, LruIndex::kNone);
    key_of[s] = k;
  }
  EXPECT_TRUE(idx.full());
  EXPECT_EQ(idx.insert(13), LruIndex::kNone);
  EXPECT_EQ(key_of[idx.oldest()], 10u);
  idx.touch(find(10));
  EXPECT_EQ(key_of[idx.oldest()], 11u);
  EXPECT_EQ(key_of[idx.newest()], 10u);
  const uint32_t old = idx.oldest();
  idx.remove(old, key_of[old]);
  EXPECT_EQ(find(11), LruIndex::kNone);
  EXPECT_EQ(idx.size(), 2u);
  const uint32_t s = idx.insert(14);
  EXPECT_EQ(s, old);  // the freed slot is reused
  key_of[s] = 14;
  EXPECT_EQ(find(14), s);
  EXPECT_NE(find(12), LruIndex::kNone);
  // Walk newest -> oldest: 14, 10, 12.
  std::vector<uint64_t> order;
  for (uint32_t i = idx.newest(); i != LruIndex::kNone; i = idx.older(i)) order.push_back(key_of[i]);
  EXPECT_EQ(order, (std::vector<uint64_t>{14, 10, 12}));
}

TEST(LruIndex, ManyKeysCollideInBucketsAndStayFindable) {
  LruIndex idx(1000);
  std::vector<uint64_t> key_of(1000);
  for (uint64_t k = 0; k < 1000; ++k) key_of[idx.insert(k * 1024)] = k * 1024;  // same bucket bits
  for (uint64_t k = 0; k < 1000; ++k)
    EXPECT_NE(idx.find(k * 1024, [&](uint32_t s) { return key_of[s] == k * 1024; }), LruIndex::kNone);
}

TEST(LruIndex, SecondChanceGivesUpTheOldestNotUsedSinceItMoved) {
  LruIndex idx(4);
  std::vector<uint32_t> slot(4);
  for (uint32_t k = 0; k < 4; ++k) slot[k] = idx.insert(k);
  EXPECT_EQ(idx.candidate(), slot[0]);  // nothing referenced: the exact oldest
  idx.reference(slot[0]);
  idx.reference(slot[2]);
  // 0 is referenced: it moves to the front with its bit cleared, and 1 is the candidate.
  EXPECT_EQ(idx.candidate(), slot[1]);
  EXPECT_EQ(idx.newest(), slot[0]);
  idx.remove(slot[1], 1);
  // Next: 2 (referenced) moves to the front, then 3 is given up.
  EXPECT_EQ(idx.candidate(), slot[3]);
  // Every slot referenced: each moves once, and the oldest of them comes round again.
  for (uint32_t k : {0u, 2u, 3u}) idx.reference(slot[k]);
  const uint32_t c = idx.candidate();
  EXPECT_NE(c, LruIndex::kNone);
  EXPECT_EQ(idx.size(), 3u);
}

TEST(LruIndex, BucketsThatOverflowStayFindableAndShrinkBack) {
  // 200 keys with the same home bucket and distinct tags: they run on through the following
  // buckets; removing them all leaves no overflow behind (a missing key ends at home).
  LruIndex idx(400);
  std::vector<uint32_t> slots;
  auto key = [](uint64_t i) { return (uint64_t{7} << 32) | (i + 1); };  // same upper half
  std::vector<uint64_t> key_of(400);
  for (uint64_t i = 0; i < 200; ++i) {
    slots.push_back(idx.insert(key(i)));
    key_of[slots.back()] = key(i);
  }
  auto find = [&](uint64_t k) { return idx.find(k, [&](uint32_t s) { return key_of[s] == k; }); };
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(find(key(i)), slots[i]);
  for (uint64_t i = 0; i < 200; i += 2) idx.remove(slots[i], key(i));
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(find(key(i)), i % 2 ? slots[i] : LruIndex::kNone);
  for (uint64_t i = 1; i < 200; i += 2) idx.remove(slots[i], key(i));
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_EQ(find(key(5)), LruIndex::kNone);
}

TEST(ClientTable, RecordsRequests) {
  ClientTable t({.capacity = 16, .mindepth = 0, .maxage_ns = 0}, 42);
  const AddressKey k = AddressKey::from(ip("198.51.100.7"));
  const uint16_t local = t.local_index(ip("192.0.2.1"));
  auto l = t.find_or_create(k, 100 * kSec);
  ASSERT_TRUE(l.created);
  t.record(l.slot, 100 * kSec, 3, 4, local, 0, false);
  l = t.find_or_create(k, 164 * kSec);
  EXPECT_FALSE(l.created);
  EXPECT_EQ(l.previous_ns, 100 * kSec);
  t.record(l.slot, 164 * kSec, 3, 3, local, kFlagLimited, true);
  l = t.find_or_create(k, 228 * kSec);
  t.record(l.slot, 228 * kSec, 1, 4, local, kFlagLimited | kFlagKod, false);
  ClientSnapshot s;
  ASSERT_TRUE(t.read(l.slot, s));
  EXPECT_EQ(s.address, ip("198.51.100.7"));
  EXPECT_EQ(s.local, ip("192.0.2.1"));
  EXPECT_EQ(s.first_ns, 100 * kSec);
  EXPECT_EQ(s.last_ns, 228 * kSec);
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.drops, 1u);
  EXPECT_EQ(s.kods, 1u);
  EXPECT_EQ(s.mode, 1);
  EXPECT_EQ(s.version, 4);
  EXPECT_EQ(s.flags, kFlagLimited | kFlagKod);
  EXPECT_EQ(t.size(), 1u);
  size_t seen = 0;
  t.for_each([&](const ClientSnapshot&) { ++seen; });
  EXPECT_EQ(seen, 1u);
}

TEST(ClientTable, EvictsTheOldestUnlessProtected) {
  // Capacity 4, maxage 60 s, mindepth 2.
  ClientTable t({.capacity = 4, .mindepth = 2, .maxage_ns = 60 * kSec}, 7);
  auto add = [&](int i, int64_t now) {
    const auto l = t.find_or_create(AddressKey::from(base::IpAddress::v4(0x0a000000u + i)), now);
    if (l.slot != ClientTable::kNone) t.record(l.slot, now, 3, 4, ClientTable::kNoLocal, 0, false);
    return l;
  };
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(add(i, (i + 1) * kSec).created);
  // Full, and the oldest (seen at 1 s) is younger than maxage: the newcomer is not tracked.
  auto l = add(100, 30 * kSec);
  EXPECT_EQ(l.slot, ClientTable::kNone);
  // Client 0 polls again: it becomes the newest; client 1 is now the oldest.
  add(0, 40 * kSec);
  // At 62 s client 1 (last seen 2 s) is older than maxage: it goes.
  l = add(101, 62 * kSec);
  EXPECT_TRUE(l.created);
  EXPECT_TRUE(l.evicted);
  bool has1 = false, has101 = false;
  t.for_each([&](const ClientSnapshot& s) {
    has1 |= s.address == base::IpAddress::v4(0x0a000001u);
    has101 |= s.address == base::IpAddress::v4(0x0a000000u + 101);
  });
  EXPECT_FALSE(has1);
  EXPECT_TRUE(has101);
  EXPECT_EQ(t.size(), 4u);
}

TEST(ClientTable, MindepthProtectsTheNewest) {
  // With mindepth = capacity nothing is ever evicted, however old.
  ClientTable t({.capacity = 2, .mindepth = 2, .maxage_ns = 0}, 7);
  for (int i = 0; i < 2; ++i)
    t.find_or_create(AddressKey::from(base::IpAddress::v4(0x0a000000u + i)), kSec);
  EXPECT_EQ(t.find_or_create(AddressKey::from(ip("10.9.9.9")), 1000 * kSec).slot, ClientTable::kNone);
}

TEST(ClientTable, ConcurrentReadersSeeWholeRecords) {
  // The writer keeps drops == count and last = first + count; a reader must never see a mix.
  ClientTable t({.capacity = 64, .mindepth = 0, .maxage_ns = 0}, 3);
  std::vector<uint32_t> slots;
  for (int i = 0; i < 64; ++i)
    slots.push_back(t.find_or_create(AddressKey::from(base::IpAddress::v4(0x0a000000u + i)), 0).slot);
  std::atomic<bool> done{false};
  std::atomic<bool> reading{false};
  std::thread writer([&] {
    while (!reading.load()) std::this_thread::yield();
    for (int round = 1; round <= 20000; ++round)
      for (uint32_t s : slots) t.record(s, round, 3, 4, ClientTable::kNoLocal, 0, true);
    done = true;
  });
  uint64_t checked = 0, torn = 0;
  reading = true;
  while (checked == 0 || !done.load()) {
    t.for_each([&](const ClientSnapshot& s) {
      ++checked;
      if (s.drops != s.count || s.last_ns != static_cast<int64_t>(s.count)) ++torn;
    });
  }
  writer.join();
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(torn, 0u);
}

TEST(ClientTable, LocalAddressesAreInterned) {
  ClientTable t({.capacity = 4}, 1);
  EXPECT_EQ(t.local_index(ip("192.0.2.1")), 0);
  EXPECT_EQ(t.local_index(ip("2001:db8::1")), 1);
  EXPECT_EQ(t.local_index(ip("192.0.2.1")), 0);
  for (int i = 0; i < 300; ++i) t.local_index(base::IpAddress::v4(0x0b000000u + i));
  EXPECT_EQ(t.local_index(ip("10.200.0.1")), ClientTable::kNoLocal);
}

// --- the limiter, driven directly with fixed seeds ---

struct Tally {
  int pass = 0, leak = 0, kod = 0, drop = 0;
  int answered() const { return pass + leak + kod; }
  int total() const { return pass + leak + kod + drop; }
};

// Requests at the given times (s) from one address of one prefix.
Tally run_limiter(const LimitParams& p, const std::vector<double>& times, uint64_t seed = 1) {
  Tally t;
  PrefixState s = fresh_state(p, static_cast<int64_t>(times.front() * kSec));
  uint64_t rng = seed;
  int64_t previous = -1;
  for (double at : times) {
    const int64_t now = static_cast<int64_t>(at * kSec);
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    const Verdict v = limit(s, p, now, previous < 0 ? -1 : now - previous, rng * 0x2545F4914F6CDD1DULL);
    previous = now;
    switch (v) {
      case Verdict::kPass: ++t.pass; break;
      case Verdict::kLeak: ++t.leak; break;
      case Verdict::kKod: ++t.kod; break;
      case Verdict::kDrop: ++t.drop; break;
    }
  }
  return t;
}

std::vector<double> periodic(double start, double period, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(start + period * i);
  return v;
}

TEST(Limiter, NormalClientsAreNeverLimited) {
  const LimitParams p;
  // ntpd's iburst (8 requests 2 s apart), then every 64 s for a day.
  std::vector<double> ntpd = periodic(0, 2, 8);
  for (double t : periodic(14 + 64, 64, 1350)) ntpd.push_back(t);
  EXPECT_EQ(run_limiter(p, ntpd).pass, static_cast<int>(ntpd.size()));
  // chrony's iburst (4 requests 2 s apart), then minpoll 6 rising to 1024 s.
  std::vector<double> chrony = periodic(0, 2, 4);
  for (double t : periodic(70, 64, 100)) chrony.push_back(t);
  for (double t : periodic(70 + 64 * 100, 1024, 50)) chrony.push_back(t);
  EXPECT_EQ(run_limiter(p, chrony).pass, static_cast<int>(chrony.size()));
  // A client at the allowed average spacing (8 s) forever, and an SNTP one-shot.
  EXPECT_EQ(run_limiter(p, periodic(0, 8, 10000)).pass, 10000);
  EXPECT_EQ(run_limiter(p, {5.0}).pass, 1);
}

TEST(Limiter, TenPerSecondGetsItsAllowance) {
  const LimitParams p;
  const int n = 10 * 3600;  // an hour at 10 requests/s
  const Tally t = run_limiter(p, periodic(0, 0.1, n), 99);
  // Every request after the first is closer than min_spacing: only the leak answers.
  EXPECT_EQ(t.pass, 1);
  const double expected = p.leak * (n - 1);
  EXPECT_NEAR(t.leak, expected, 4 * std::sqrt(expected));  // 4 sigma of a binomial
  // KoDs only while the rate score is below flood_rate: the first few seconds.
  EXPECT_GE(t.kod, 1);
  EXPECT_LE(t.kod, 3);
  EXPECT_LT(static_cast<double>(t.answered()) / n, 0.06);

  // Without the spacing rule it gets the bucket's one per interval, plus the leak.
  LimitParams q = p;
  q.min_spacing_s = 0;
  const Tally u = run_limiter(q, periodic(0, 0.1, n), 99);
  const double tokens = q.burst + 3600 / q.interval_s;
  EXPECT_NEAR(u.pass, tokens, 2);
  EXPECT_NEAR(u.leak, q.leak * (n - u.pass), 4 * std::sqrt(q.leak * n));
}

TEST(Limiter, OneRequestEveryTwoSecondsIsThrottledAfterTheBurst) {
  const LimitParams p;
  const Tally t = run_limiter(p, periodic(0, 2, 1800), 5);  // an hour
  // The bucket allows burst + 3600/8 requests; a rate score of 0.5/s allows KoDs, paced.
  EXPECT_NEAR(t.pass, p.burst + 3600 / p.interval_s, 2);
  EXPECT_LE(t.kod, 3600 / p.kod_interval_s + 1);
  EXPECT_GT(t.kod, 100);  // the score (0.5/s) is no flood: it is told, every 8 s
}

TEST(Limiter, SpoofedVictimStillGetsSomeReplies) {
  // An attacker sends 100 requests/s with the victim's address; the victim polls every 64 s.
  // Both share one state; the victim's own requests are answered at about the leak rate.
  const LimitParams p;
  PrefixState s = fresh_state(p, 0);
  uint64_t rng = 77;
  int victim_answered = 0, victim_sent = 0, kods = 0;
  int64_t previous = -1;
  for (int64_t ms = 0; ms < 86'400'000; ms += 10) {
    const bool victim = ms % 64000 == 5000;
    const int64_t now = ms * 1'000'000 + (victim ? 1'000'000 : 0);
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    const Verdict v = limit(s, p, now, previous < 0 ? -1 : now - previous, rng * 0x2545F4914F6CDD1DULL);
    previous = now;
    if (v == Verdict::kKod) ++kods;
    if (victim) {
      ++victim_sent;
      if (v != Verdict::kDrop) ++victim_answered;
    }
  }
  EXPECT_EQ(victim_sent, 1350);
  const double expected = p.leak * victim_sent;
  EXPECT_GT(victim_answered, 0);
  EXPECT_NEAR(victim_answered, expected, 4 * std::sqrt(expected));
  EXPECT_LE(kods, 3);  // a flood gets no KoDs: they would be reflected onto the victim
}

TEST(Limiter, KodPollIsTheIntervalRoundedUp) {
  LimitParams p;
  EXPECT_EQ(p.kod_poll(), 3);
  p.interval_s = 64;
  EXPECT_EQ(p.kod_poll(), 6);
  p.interval_s = 100;
  EXPECT_EQ(p.kod_poll(), 7);
}

TEST(PrefixTable, EvictsTheLeastRecentlySeen) {
  LimitParams p;
  PrefixTable t(2, 9);
  const auto a = AddressKey::from(ip("10.0.0.1")), b = AddressKey::from(ip("10.0.0.2")),
             c = AddressKey::from(ip("10.0.0.3"));
  EXPECT_TRUE(t.find_or_create(a, p, 0).created);
  EXPECT_TRUE(t.find_or_create(b, p, kSec).created);
  EXPECT_FALSE(t.find_or_create(a, p, 2 * kSec).created);
  auto l = t.find_or_create(c, p, 3 * kSec);  // b goes, still active (seen 2 s ago)
  EXPECT_TRUE(l.created);
  EXPECT_TRUE(l.evicted_active);
  EXPECT_FALSE(t.find_or_create(a, p, 4 * kSec).created);
  l = t.find_or_create(b, p, 1000 * kSec);  // c goes, idle long enough to have refilled
  EXPECT_TRUE(l.created);
  EXPECT_FALSE(l.evicted_active);
}

// Found by the security review (issue 12, finding 9): with more active prefixes than slots,
// each new one started with a full bucket, and 10,000 forged victims were answered 100%.
TEST(PrefixTable, AFullTableDoesNotFailOpen) {
  LimitParams p;
  p.leak = 0;
  PrefixTable t(100, 9);
  uint64_t answered = 0, requests = 0;
  // 10,000 sources, each polling every 2 s for 60 s (every one over the table's size).
  for (int64_t round = 0; round < 30; ++round) {
    for (uint32_t i = 0; i < 10000; ++i) {
      const int64_t now = round * 2 * kSec + i * (2 * kSec / 10000);
      auto l = t.find_or_create(AddressKey::from(base::IpAddress::v4(0x0a000000u + i)), p, now);
      answered += limit(*l.state, p, now, -1, 0) == Verdict::kPass;
      ++requests;
    }
  }
  // What 100 slots allow: a burst of 8 each, then one per 8 s each.
  const double allowance = 100 * (8 + 60.0 / 8);
  EXPECT_LE(static_cast<double>(answered), 1.2 * allowance) << answered << " of " << requests;
  // A table large enough for everyone changes nothing: each source gets its burst.
  PrefixTable big(20000, 9);
  answered = 0;
  for (uint32_t i = 0; i < 10000; ++i) {
    auto l = big.find_or_create(AddressKey::from(base::IpAddress::v4(0x0a000000u + i)), p, i);
    answered += limit(*l.state, p, i, -1, 0) == Verdict::kPass;
  }
  EXPECT_EQ(answered, 10000u);
}

TEST(PrefixTable, AStaleHintFindsTheRightPrefix) {
  LimitParams p;
  PrefixTable t(2, 9);
  const auto a = AddressKey::from(ip("10.0.0.1")), b = AddressKey::from(ip("10.0.0.2")),
             c = AddressKey::from(ip("10.0.0.3"));
  uint32_t hint_a = 0, hint_b = 0, hint_c = 0;
  PrefixState* sa = t.find_or_create(a, p, 0, &hint_a).state;
  EXPECT_NE(hint_a, 0u);
  t.find_or_create(b, p, kSec, &hint_b);
  EXPECT_EQ(t.find_or_create(a, p, 2 * kSec, &hint_a).state, sa);  // through the hint
  // b goes; c takes its slot. b's old hint now names c's record: it must not be taken.
  t.find_or_create(c, p, 3 * kSec, &hint_c);
  EXPECT_EQ(hint_c, hint_b);
  uint32_t stale = hint_b;
  const auto l = t.find_or_create(b, p, 4 * kSec, &stale);
  EXPECT_TRUE(l.created);
  EXPECT_NE(l.state, t.find_or_create(c, p, 4 * kSec).state);
  // A hint past the table or zero is ignored.
  uint32_t wild = 1000;
  EXPECT_FALSE(t.find_or_create(b, p, 5 * kSec, &wild).created);
  EXPECT_NE(wild, 1000u);
}

// --- the tracker: table and limiter together ---

TrackerOptions small_tracker() {
  TrackerOptions o;
  o.table.capacity = 1024;
  o.table.mindepth = 0;
  o.prefix_capacity = 1024;
  o.seed = 1234;
  o.limits.leak = 0;  // deterministic
  return o;
}

TEST(Tracker, LimitsAWholeIpv6PrefixTogether) {
  Tracker t(small_tracker());
  const base::IpAddress local = ip("2001:db8::123");
  // 20 addresses of one /64, each asking once, 1 s apart: one bucket of 8 (+ refill).
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    base::IpAddress a = ip("2001:db8:aa:bb::");
    a.bytes[15] = static_cast<uint8_t>(i + 1);
    const auto o = t.observe(a, local, 3, 4, i * kSec);
    if (o.verdict != Verdict::kPass) ++limited;
  }
  EXPECT_EQ(limited, 20 - 8 - 2);  // 8 tokens + 19 s / 8 s of refill
  EXPECT_EQ(t.table().size(), 20u);
  EXPECT_EQ(t.prefixes().size(), 1u);
  // Another /64 is untouched.
  EXPECT_EQ(t.observe(ip("2001:db8:aa:bc::1"), local, 3, 4, 20 * kSec).verdict, Verdict::kPass);
}

TEST(Tracker, Ipv4PrefixLengthIsConfigurable) {
  TrackerOptions o = small_tracker();
  o.limits.v4_prefix = 24;
  Tracker t(o);
  int limited = 0;
  for (int i = 0; i < 30; ++i)
    if (t.observe(base::IpAddress::v4(0xc0000200u + static_cast<uint32_t>(i)), ip("192.0.2.250"), 3,
                  4, i * kSec / 10).verdict != Verdict::kPass)
      ++limited;
  EXPECT_EQ(limited, 30 - 8);
  EXPECT_EQ(t.prefixes().size(), 1u);
}

TEST(Tracker, RecordsOutcomesPerClient) {
  Tracker t(small_tracker());
  const base::IpAddress a = ip("198.51.100.9"), local = ip("192.0.2.1");
  std::vector<Verdict> v;
  for (int i = 0; i < 10; ++i) v.push_back(t.observe(a, local, 3, 4, i * kSec / 10).verdict);
  EXPECT_EQ(v[0], Verdict::kPass);
  EXPECT_EQ(v[1], Verdict::kKod);  // too close; the first KoD
  for (int i = 2; i < 10; ++i) EXPECT_EQ(v[static_cast<size_t>(i)], Verdict::kDrop);
  ClientSnapshot s;
  size_t n = 0;
  t.table().for_each([&](const ClientSnapshot& c) {
    s = c;
    ++n;
  });
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.kods, 1u);
  EXPECT_EQ(s.drops, 8u);
  EXPECT_EQ(s.flags, kFlagLimited);
  EXPECT_EQ(s.local, local);
  // With limiting off for this request (an access rule's nolimit), it passes and is counted.
  const LimitParams& p = t.options().limits;
  EXPECT_EQ(t.observe(a, local, 3, 4, kSec, p, Treatment::kUnlimited).verdict, Verdict::kPass);
  // Denied: one KoD DENY per kod_interval, the rest dropped; recorded as denied.
  const base::IpAddress b = ip("203.0.113.50");
  std::vector<Verdict> d;
  for (int i = 0; i < 5; ++i) d.push_back(t.observe(b, local, 3, 4, 100 * kSec + i * kSec, p, Treatment::kDenied).verdict);
  EXPECT_EQ(d, (std::vector<Verdict>{Verdict::kKod, Verdict::kDrop, Verdict::kDrop, Verdict::kDrop, Verdict::kDrop}));
  EXPECT_EQ(t.observe(b, local, 3, 4, 109 * kSec, p, Treatment::kDenied).verdict, Verdict::kKod);
  t.table().for_each([&](const ClientSnapshot& c) {
    if (c.address == b) {
      EXPECT_EQ(c.flags, kFlagDenied | kFlagKod);
      EXPECT_EQ(c.kods, 2u);
      EXPECT_EQ(c.drops, 4u);
    }
  });
}

TEST(Tracker, WatchesFirstKods) {
  Tracker t(small_tracker());
  const LimitParams& p = t.options().limits;
  const base::IpAddress local = ip("192.0.2.1");
  // Two clients polling ten times a second get a KoD on their second request.
  for (const char* a : {"198.51.100.1", "198.51.100.2"})
    for (int i = 0; i < 2; ++i) t.observe(ip(a), local, 3, 4, 10 * kSec + i * kSec / 10, p);
  // Only first KoDs are noted.
  t.observe(ip("198.51.100.1"), local, 3, 4, 30 * kSec, p);
  const auto watched = t.kod_watch().snapshot();
  ASSERT_EQ(watched.size(), 2u);
  EXPECT_EQ(watched[0].key, AddressKey::from(ip("198.51.100.1")));
  EXPECT_EQ(watched[0].count_at_kod, 2u);
  EXPECT_EQ(watched[0].kod_ns, 10 * kSec + kSec / 10);
  EXPECT_EQ(watched[0].first_ns, 10 * kSec);
  EXPECT_EQ(t.kod_watch().skipped(), 0u);
}

TEST(Tracker, PreparedBatchesGiveTheSameObservations) {
  // The same trace through two trackers, one of them prepared batch by batch: identical
  // observations (prefetching is a hint only), with evictions in both tables.
  TrackerOptions o = small_tracker();
  o.table.capacity = 300;
  o.table.maxage_ns = 0;
  o.prefix_capacity = 10;
  o.limits.v4_prefix = 24;
  Tracker plain(o), prepared(o);
  size_t evictions = 0, prefix_evictions = 0, limited = 0;
  std::mt19937 rng(8);
  std::vector<base::IpAddress> trace(20000);
  for (auto& a : trace) a = base::IpAddress::v4(0x0a000000u | (rng() % 2000) | (rng() % 3) << 16);
  const base::IpAddress local = ip("192.0.2.1");
  int64_t now = 100 * kSec;
  for (size_t b = 0; b < trace.size(); b += 64) {
    prepared.prepare(std::min<size_t>(64, trace.size() - b),
                     [&](size_t j) -> const base::IpAddress& { return trace[b + j]; }, o.limits);
    for (size_t j = 0; j < 64 && b + j < trace.size(); ++j) {
      now += kSec / 500;
      const Observation x = plain.observe(trace[b + j], local, 3, 4, now);
      const Observation y = prepared.observe(trace[b + j], local, 3, 4, now);
      ASSERT_EQ(x.verdict, y.verdict) << b + j;
      ASSERT_EQ(x.created, y.created);
      ASSERT_EQ(x.evicted, y.evicted);
      ASSERT_EQ(x.prefix_evicted, y.prefix_evicted);
      ASSERT_EQ(x.gap_ns, y.gap_ns);
      evictions += x.evicted;
      prefix_evictions += x.prefix_evicted;
      limited += x.verdict != Verdict::kPass;
    }
  }
  EXPECT_EQ(plain.table().size(), prepared.table().size());
  EXPECT_GT(evictions, 1000u);
  EXPECT_GT(prefix_evictions, 0u);
  EXPECT_GT(limited, 0u);
}

TEST(Tracker, SizesItselfFromMemory) {
  const TrackerOptions o = size_for_memory(64u << 20, TrackerOptions{});
  EXPECT_EQ(o.table.capacity, (64u << 20) / 5 * 4 / kClientSlotBytes);
  Tracker t(o);
  EXPECT_LE(t.table().memory_bytes() + t.prefixes().memory_bytes(), 64u << 20);
  EXPECT_GT(t.table().memory_bytes() + t.prefixes().memory_bytes(), 60u << 20);
}

}  // namespace
}  // namespace strata::clients
