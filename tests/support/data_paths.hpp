#pragma once
// Where tests find the real session logs: ../shared/data next to the repository (as in CI), or
// the data shipped inside the repository. EMBSR_SHARED_DATA_DIR and EMBSR_REPO_DATA_DIR come from CMake;
// the environment variables of the same names override them at run time.

#include <cstdlib>
#include <string>

namespace embsr::test {

// The environment variable of the same name overrides the configured directory at run time (a
// test binary built on one machine and run on another, as scripts/gpu-check.sh does).
inline std::string shared_data_dir() {
  const char* env = std::getenv("EMBSR_SHARED_DATA_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(EMBSR_SHARED_DATA_DIR);
}

inline std::string shared_data(const std::string& relative) { return shared_data_dir() + "/" + relative; }
inline std::string repo_data(const std::string& relative) {
  const char* env = std::getenv("EMBSR_REPO_DATA_DIR");
  return (env != nullptr && *env != '\0' ? std::string(env) : std::string(EMBSR_REPO_DATA_DIR)) + "/" + relative;
}

// Short names for the files every data test uses.
inline std::string jd_appliances_micro() {
  return shared_data("jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample");
}
inline std::string jd_appliances_hup() { return shared_data("jd_micro_behavior_hup/HUP_Data/Applicances/JD_Applicances_sample"); }
inline std::string jd_computers_micro() {
  return shared_data("jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Computers_sample");
}
inline std::string jd_computers_hup() { return shared_data("jd_micro_behavior_hup/HUP_Data/Computers/JD_Computers_sample"); }
inline std::string trivago_csv() { return shared_data("trivago_recsys2019/trivago_val_100k.csv"); }

// A fresh scratch directory for files a test writes (removed by the OS tmp cleaner, not by us,
// so a failing test leaves its inputs behind for inspection).
std::string scratch_dir();

}  // namespace embsr::test
