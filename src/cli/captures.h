// Reading capture files into an analysis (libpcap), shared by `strata analyze` and `strata
// cost --capture`.
#pragma once

#include <string>
#include <vector>

#include "analyze/analysis.h"
#include "analyze/replay.h"

namespace strata::cli {

struct CaptureFile {
  std::string name;
  std::string link;   // libpcap's name of the link type
  uint64_t frames = 0;
  std::string warning;  // damage: where reading stopped and why
};

struct CaptureRead {
  std::vector<CaptureFile> files;  // those that could be read (at least in part)
  int status = 0;                  // 1 when a file could not be opened or its link type is unknown
  // Set when the files held UDP but no NTP on the port asked for: which port carried most
  // of it, as a hint for --port (also printed to stderr).
  std::string port_hint;
};

// Reads every frame of every file into `analysis` (and `replay`, when given, for requests).
// Errors and warnings go to stderr prefixed with `who`.
CaptureRead read_captures(const std::vector<std::string>& paths, analyze::Analysis& analysis,
                          analyze::Replay* replay, const char* who);

}  // namespace strata::cli
