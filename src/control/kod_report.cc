// "kod-effect" control command (see kod_report.h).
#include "control/kod_report.h"

#include <algorithm>

namespace strata::control {

nlohmann::json kod_effect_json(const std::vector<const clients::Tracker*>& trackers,
                               int64_t now_ns, double min_age_s, size_t limit) {
  // A client sent nothing since its KoD ("stopped"), or is judged on its rate over the time
  // it stayed active after the KoD (KoD to its last request), not over the time until now:
  // one that ignored the KoD at full rate for a while and then went quiet did not slow down.
  struct Judged {
    std::string address;
    double before, after, age, quiet;
    bool slowed;
  };
  std::vector<Judged> judged;
  uint64_t watched = 0, waiting = 0, lost = 0, unknown = 0, skipped = 0, stopped = 0;
  for (const auto* t : trackers) {
    skipped += t->kod_watch().skipped();
    for (const auto& e : t->kod_watch().snapshot()) {
      ++watched;
      clients::ClientSnapshot s;
      if (!t->table().read(e.slot, s) || !(clients::AddressKey::from(s.address) == e.key)) {
        ++lost;  // the record was evicted since
        continue;
      }
      const double age = static_cast<double>(now_ns - e.kod_ns) * 1e-9;
      if (age < min_age_s) {
        ++waiting;
        continue;
      }
      const double span = static_cast<double>(e.kod_ns - e.first_ns) * 1e-9;
      if (e.count_at_kod < 2 || span <= 0) {
        ++unknown;  // KoD'd on its first request: no rate before
        continue;
      }
      const double before = (e.count_at_kod - 1) / span;
      if (s.count <= e.count_at_kod) {
        ++stopped;
        continue;
      }
      const double active = std::max(1e-3, static_cast<double>(s.last_ns - e.kod_ns) * 1e-9);
      const double after = static_cast<double>(s.count - e.count_at_kod) / active;
      const double quiet = std::max(0.0, static_cast<double>(now_ns - s.last_ns) * 1e-9);
      judged.push_back({s.address.to_string(), before, after, age, quiet, after <= before / 2});
    }
  }
  const auto slowed = static_cast<uint64_t>(
      std::count_if(judged.begin(), judged.end(), [](const Judged& j) { return j.slowed; }));
  // The ones that did not slow down first, fastest first: the clients KoD does not reach.
  std::sort(judged.begin(), judged.end(), [](const Judged& a, const Judged& b) {
    if (a.slowed != b.slowed) return !a.slowed;
    return a.after > b.after;
  });
  auto median = [&](auto field) {
    if (judged.empty()) return 0.0;
    std::vector<double> v;
    for (const auto& j : judged) v.push_back(field(j));
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < judged.size() && i < limit; ++i)
    rows.push_back({{"address", judged[i].address},
                    {"rate_before", judged[i].before},
                    {"rate_after", judged[i].after},
                    {"since_kod", judged[i].age},
                    {"quiet_for", judged[i].quiet},
                    {"slowed", judged[i].slowed}});
  return {{"ok", true},
          {"watched", watched},
          {"judged", judged.size()},
          {"slowed", slowed},
          {"stopped", stopped},
          {"share_slowed", judged.empty() ? 0.0 : static_cast<double>(slowed) / judged.size()},
          {"share_stopped", judged.size() + stopped == 0
                                ? 0.0
                                : static_cast<double>(stopped) / static_cast<double>(judged.size() + stopped)},
          {"median_rate_before", median([](const Judged& j) { return j.before; })},
          {"median_rate_after", median([](const Judged& j) { return j.after; })},
          {"waiting", waiting},
          {"lost", lost},
          {"unknown_before", unknown},
          {"skipped", skipped},
          {"min_age", min_age_s},
          {"clients", rows}};
}

}  // namespace strata::control
