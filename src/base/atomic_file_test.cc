// Unit tests of the atomic state-file writer: planted links are never followed, a failed
// write leaves the old file.
#include "base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace strata::base {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AtomicFile, ReplacesWithoutFollowingPlantedLinks) {
  const auto dir = std::filesystem::temp_directory_path() / ("atomic-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "state.json").string(), victim = (dir / "victim").string();
  std::ofstream(victim) << "precious";
  // The old fixed temporary name, and the file itself, planted as links to the victim.
  std::filesystem::create_symlink(victim, path + ".tmp");
  std::filesystem::create_symlink(victim, path);
  EXPECT_EQ(write_file_atomically(path, "new state\n"), "");
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_FALSE(std::filesystem::is_symlink(path));
  EXPECT_EQ(slurp(path), "new state\n");
  EXPECT_EQ(write_file_atomically(path, "newer\n"), "");
  EXPECT_EQ(slurp(path), "newer\n");
  // No temporary file is left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.path().filename().string().find(".tmp.") != std::string::npos;
  EXPECT_EQ(files, 0u);
  // A directory that does not exist: an error naming the file; nothing else changes.
  const std::string e = write_file_atomically((dir / "no" / "x").string(), "x");
  EXPECT_NE(e.find("cannot create"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata::base
