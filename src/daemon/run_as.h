// Who stratad runs as after binding, and whether that user can reach every file it will use
// then: the state directory (saved every minute), the config, rules and keys files (read
// again at each reload). Checked at start and by --check-config, so a mistake shows at once
// instead of a minute later in a log line. Main thread, before any other thread starts.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace strata::daemon {

struct RunAs {
  std::string name;  // "nobody"
  uid_t uid = 0;
  gid_t gid = 0;
  bool drop = false;  // started as root and switching to this user
};

// The user for `wanted` (empty: stratad if it exists, else nobody) when started as root,
// else the current user. nullopt, with `error` set, when the user does not exist.
std::optional<RunAs> resolve_run_as(const std::string& wanted, std::string& error);

struct FileNeed {
  std::string path;
  std::string what;   // "state_dir", "[auth] keys", ...
  bool directory_rw;  // a directory to write files in; else a file to read
};

// One message per file `who` cannot use ("state_dir /var/lib/x is not writable by user
// nobody (uid 65534): Permission denied"). As root switching users, the checks run in a
// child process that has switched (so ACLs, read-only mounts and every directory on the way
// count exactly as they will).
std::vector<std::string> check_files_as(const RunAs& who, const std::vector<FileNeed>& needs);

}  // namespace strata::daemon
