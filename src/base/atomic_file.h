// Writing a state file so that a crash, a full disk or a planted link never leaves a half
// file or writes elsewhere: a new temporary file with a random name next to it (O_EXCL |
// O_NOFOLLOW: never a file someone planted), fsync, rename over the old one, fsync of the
// directory. Main thread of stratad (state saves); any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace strata::base {

// Empty on success, else why not ("cannot create /var/lib/stratad/x.tmp.1f2e: Permission
// denied"); the old file is then untouched.
std::string write_file_atomically(const std::string& path, std::string_view data, unsigned mode = 0640);

// Reading a file an operator may be rewriting in place (rules, keys): waits until it has not
// changed for `settle` (up to `max_wait`), reads it, and checks that it did not change during
// the read (size, modification time, inode). nullopt with `error` set when it cannot be read
// or kept changing; a reload then keeps the rules in force.
std::optional<std::string> read_settled_file(const std::string& path, std::string& error,
                                             std::chrono::milliseconds settle = std::chrono::milliseconds(1000),
                                             std::chrono::milliseconds max_wait = std::chrono::milliseconds(5000));

}  // namespace strata::base
