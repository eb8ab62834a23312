// Writing a state file so that a crash, a full disk or a planted link never leaves a half
// file or writes elsewhere: a new temporary file with a random name next to it (O_EXCL |
// O_NOFOLLOW: never a file someone planted), fsync, rename over the old one, fsync of the
// directory. Main thread of stratad (state saves); any thread.
#pragma once

#include <string>
#include <string_view>

namespace strata::base {

// Empty on success, else why not ("cannot create /var/lib/stratad/x.tmp.1f2e: Permission
// denied"); the old file is then untouched.
std::string write_file_atomically(const std::string& path, std::string_view data, unsigned mode = 0640);

}  // namespace strata::base
