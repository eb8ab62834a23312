// Prints docs/metrics.md (see control/metrics.h).
#include <cstdio>

#include "control/metrics.h"

int main() {
  const std::string md = strata::control::metrics_markdown();
  std::fwrite(md.data(), 1, md.size(), stdout);
  return 0;
}
