#include "data_paths.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace embsr::test {

std::string scratch_dir() {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "embsr-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

}  // namespace embsr::test
