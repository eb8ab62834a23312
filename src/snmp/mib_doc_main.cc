// Prints the STRATA-MIB module (mibs/STRATA-MIB.txt): build/snmp_mib_doc > mibs/STRATA-MIB.txt
#include <cstdio>

#include "snmp/mib.h"

int main() {
  const std::string text = strata::snmp::mib_text();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
