#pragma once
// A deliberately tiny reader of the JD micro-behavior sample for tests of preprocessing, graphs
// and batching: independent of embsr's loaders, so those tests neither wait for nor trust them.
// Line = one session; token = "sku+behavior_type+category+time_interval+dwell_time".

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <embsr/data/session_dataset.hpp>

#include "data_paths.hpp"

namespace embsr::test {

struct JdSample {
  std::vector<std::vector<std::string>> skus;  // [session][event] raw SKU
  std::vector<std::vector<std::string>> ops;   // [session][event] raw behavior type
};

// The first `max_sessions` non-empty lines of `path`.
inline JdSample read_jd_sample(const std::string& path, std::size_t max_sessions) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  JdSample sample;
  std::string line, token;
  while (sample.skus.size() < max_sessions && std::getline(in, line)) {
    std::istringstream tokens(line);
    std::vector<std::string> skus, ops;
    while (tokens >> token) {
      const auto p1 = token.find('+');
      const auto p2 = token.find('+', p1 + 1);
      if (p1 == std::string::npos || p2 == std::string::npos) throw std::runtime_error("bad token " + token);
      skus.push_back(token.substr(0, p1));
      ops.push_back(token.substr(p1 + 1, p2 - p1 - 1));
    }
    if (skus.empty()) continue;
    sample.skus.push_back(std::move(skus));
    sample.ops.push_back(std::move(ops));
  }
  return sample;
}

// The sample as a SessionDataset; order key = line position, times = event position.
inline SessionDataset to_dataset(const JdSample& sample) {
  SessionDataset data;
  std::vector<MicroBehavior> events;
  for (std::size_t s = 0; s < sample.skus.size(); ++s) {
    events.clear();
    for (std::size_t i = 0; i < sample.skus[s].size(); ++i)
      events.push_back(MicroBehavior{data.item_vocab.add(sample.skus[s][i]), data.op_vocab.add(sample.ops[s][i]),
                                     static_cast<double>(i)});
    data.add_session(events, static_cast<double>(s), "line " + std::to_string(s + 1));
  }
  return data;
}

// From the copy shipped in the repository (data/jd_appliances), so these tests run in any clone.
inline JdSample jd_appliances_sample(std::size_t max_sessions) {
  return read_jd_sample(repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample"),
                        max_sessions);
}

}  // namespace embsr::test
