// The five session kNN models (model/session_knn.hpp) against the brute-force Python reference
// tests/oracle/knn_reference.py, written from the formulas at the top of that header: real JD
// sessions (the sample shipped in data/, support 5, L 40), every model under option sets that
// together cover every decay, remind, IDF, recency / neighbour-position decay, both samplings and
// sample sizes that bite, small k and the operation power; every score to 1e-6. Runs the system
// python3 (stdlib only).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/model/session_knn.hpp>

#include "data_paths.hpp"

namespace test_session_knn_reference {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using Exec = Kokkos::DefaultHostExecutionSpace;
using Memory = Exec::memory_space;

constexpr int kMaxLength = 40;

const embsr::PreparedData& jd_appliances() {
  static const embsr::PreparedData data = [] {
    const auto raw = embsr::load_jd({embsr::test::repo_data("jd_appliances/HUP_Data/JD_Applicances_sample"),
                                     embsr::test::repo_data("jd_appliances/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample")});
    embsr::PreprocessOptions o;
    o.min_item_support = 5;
    o.max_length = kMaxLength;
    return embsr::preprocess(raw, o);
  }();
  return data;
}

using Options = std::vector<std::pair<std::string, std::string>>;

struct Job {
  std::string model;
  Options options;
  std::vector<index_t> requests;  // positions in the request batch
};

// Option sets: together every decay of V-SKNN's session and match weightings, remind on and off,
// IDF on and off, recency and neighbour-position decays on and off, sampling recent and random
// (several seeds), sample sizes that bite (20, 30) and 0 (all), small k, the registry defaults,
// and op_power 0 (= VSTAN), positive and negative.
std::vector<std::pair<std::string, Options>> option_sets() {
  return {
      {"sknn", {}},
      {"sknn", {{"k", "5"}, {"sample_size", "20"}}},
      {"sknn", {{"k", "10"}, {"sample_size", "20"}, {"sampling", "random"}, {"seed", "7"}}},
      {"sknn", {{"k", "50"}, {"sample_size", "0"}}},
      {"v-sknn", {}},
      {"v-sknn", {{"session_weighting", "same"}, {"match_weighting", "same"}, {"k", "20"}, {"sample_size", "0"}}},
      {"v-sknn", {{"session_weighting", "linear"}, {"match_weighting", "linear"}, {"remind", "false"}, {"lambda_idf", "2"}}},
      {"v-sknn", {{"session_weighting", "log"}, {"match_weighting", "log"}, {"sample_size", "20"}, {"sampling", "random"}, {"seed", "3"}}},
      {"v-sknn", {{"session_weighting", "quadratic"}, {"match_weighting", "quadratic"}, {"lambda_idf", "1"}, {"k", "5"}}},
      {"v-sknn", {{"session_weighting", "div"}, {"match_weighting", "linear"}, {"k", "8"}, {"sample_size", "20"}, {"remind", "false"}}},
      {"v-sknn", {{"session_weighting", "linear"}, {"match_weighting", "quadratic"}, {"lambda_idf", "0.5"}, {"sample_size", "30"}}},
      {"stan", {}},
      {"stan", {{"lambda_snh", "0"}, {"lambda_inh", "0"}, {"remind", "false"}, {"k", "10"}, {"sample_size", "20"}}},
      {"stan", {{"lambda_spw", "4"}, {"lambda_snh", "2.5"}, {"lambda_inh", "0.5"}, {"sampling", "random"}, {"seed", "11"}, {"sample_size", "30"}}},
      {"stan", {{"lambda_snh", "0.05"}, {"lambda_inh", "0"}, {"sample_size", "0"}, {"k", "20"}}},
      {"vstan", {}},
      {"vstan", {{"lambda_idf", "0"}, {"remind", "false"}, {"lambda_ipw", "3"}}},
      {"vstan", {{"lambda_snh", "0"}, {"lambda_inh", "0"}, {"lambda_idf", "2"}, {"k", "5"}, {"sample_size", "20"}, {"sampling", "random"}, {"seed", "5"}}},
      {"vstan", {{"sample_size", "0"}, {"lambda_spw", "0.5"}, {"lambda_ipw", "0.4"}, {"k", "30"}}},
      {"vstan-ops", {}},
      {"vstan-ops", {{"op_power", "0"}}},
      {"vstan-ops", {{"op_power", "-1"}, {"remind", "false"}, {"lambda_idf", "0"}, {"sample_size", "20"}, {"k", "10"}}},
      {"vstan-ops", {{"op_power", "2.5"}, {"sampling", "random"}, {"seed", "9"}, {"lambda_snh", "0"}, {"lambda_inh", "4"}, {"sample_size", "30"}}},
  };
}

embsr::ModelOptions model_options(const embsr::PreparedData& data, const Options& options) {
  embsr::ModelOptions o;
  o.set("num_items", static_cast<int>(data.item_vocab.size()))
      .set("num_ops", static_cast<int>(data.op_vocab.size()))
      .set("max_length", kMaxLength);
  for (const auto& [key, value] : options) o.set(key, value);
  return o;
}

// Scores of the batch's sessions [B x V] (row-major) by the concrete model of `Kind`, built from
// the registry's completed options (an option the model does not take is an error here too).
template <embsr::KnnKind Kind>
std::vector<double> knn_scores(const std::string& name, const embsr::ModelOptions& options, const embsr::ExampleSet& train,
                               const embsr::Batch<Memory>& batch) {
  const embsr::KnnConfig config = embsr::KnnSpec<Kind>::config_of(embsr::complete_model_options(name, options));
  embsr::SessionKnnModel<Exec, Kind> model(config);
  model.fit(train);
  const auto s = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.scores(batch));
  return std::vector<double>(s.data(), s.data() + s.size());
}

std::vector<double> knn_scores(const std::string& name, const embsr::ModelOptions& options, const embsr::ExampleSet& train,
                               const embsr::Batch<Memory>& batch) {
  using K = embsr::KnnKind;
  if (name == "sknn") return knn_scores<K::Sknn>(name, options, train, batch);
  if (name == "v-sknn") return knn_scores<K::VSknn>(name, options, train, batch);
  if (name == "stan") return knn_scores<K::Stan>(name, options, train, batch);
  if (name == "vstan") return knn_scores<K::Vstan>(name, options, train, batch);
  if (name == "vstan-ops") return knn_scores<K::VstanOps>(name, options, train, batch);
  FAIL("no kNN model " << name);
  return {};
}

template <class T>
void json_array(std::ostream& out, const T* begin, const T* end) {
  out << '[';
  for (const T* p = begin; p != end; ++p) out << (p == begin ? "" : ",") << *p;
  out << ']';
}

std::string json_string(const std::string& s) { return "\"" + s + "\""; }  // our keys and values need no escapes

// DIR/input.json for the reference (format: tests/oracle/knn_reference.py).
void write_input(const std::string& path, const embsr::PreparedData& data, const embsr::HostBatch& requests,
                 const std::vector<Job>& jobs) {
  std::ofstream out(path);
  out << "{\"num_items\": " << data.item_vocab.size() << ", \"num_ops\": " << data.op_vocab.size() << ",\n\"train\": [";
  const embsr::ExampleSet& train = data.train;
  char key[64];
  for (std::size_t e = 0; e < train.size(); ++e) {
    const auto items = train.input_items(e);
    const auto ops = train.input_ops(e);
    out << (e == 0 ? "\n[" : ",\n[");
    json_array(out, items.data(), items.data() + items.size());
    out << ',';
    json_array(out, ops.data(), ops.data() + ops.size());
    std::snprintf(key, sizeof key, "%.17g", train.order_keys[e]);
    out << ',' << train.targets[e] << ',' << train.next_ops[e] << ',' << key << ']';
  }
  out << "],\n\"requests\": [";
  const std::size_t B = requests.micro_offsets.size() - 1;
  for (std::size_t b = 0; b < B; ++b) {
    const index_t* items = requests.micro_items.data();
    const index_t* ops = requests.micro_ops.data();
    const auto begin = requests.micro_offsets[b], end = requests.micro_offsets[b + 1];
    out << (b == 0 ? "\n[" : ",\n[");
    json_array(out, items + begin, items + end);
    out << ',';
    json_array(out, ops + begin, ops + end);
    out << ']';
  }
  out << "],\n\"jobs\": [";
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    out << (j == 0 ? "\n" : ",\n") << "{\"model\": " << json_string(jobs[j].model) << ", \"options\": {";
    for (std::size_t i = 0; i < jobs[j].options.size(); ++i)
      out << (i == 0 ? "" : ", ") << json_string(jobs[j].options[i].first) << ": " << json_string(jobs[j].options[i].second);
    out << "}, \"requests\": ";
    json_array(out, jobs[j].requests.data(), jobs[j].requests.data() + jobs[j].requests.size());
    out << '}';
  }
  out << "]}\n";
  REQUIRE(out.good());
}

// A configured path, unless the environment variable of the same name overrides it.
std::string setting(const char* name, const char* configured) {
  const char* env = std::getenv(name);
  return std::string(env != nullptr && *env != '\0' ? env : configured);
}

// reference[job][k] = the dense scores of jobs[job].requests[k].
std::vector<std::vector<std::vector<double>>> run_reference(const std::string& dir, const std::vector<Job>& jobs,
                                                             std::size_t num_items) {
  const std::string cmd = setting("EMBSR_PYTHON", EMBSR_PYTHON) + " " + setting("EMBSR_SOURCE_DIR", EMBSR_SOURCE_DIR) +
                          "/tests/oracle/knn_reference.py " + dir + " > " + dir + "/reference.log 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream log(dir + "/reference.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    FAIL("knn_reference.py failed (" << rc << "): " << cmd << "\n" << text);
  }
  std::vector<std::vector<std::vector<double>>> out(jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) out[j].assign(jobs[j].requests.size(), std::vector<double>(num_items, 0.0));
  std::ifstream in(dir + "/scores.txt");
  std::string line;
  std::vector<std::size_t> next(jobs.size(), 0);
  std::size_t lines = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::size_t job = 0, request = 0, count = 0;
    REQUIRE(static_cast<bool>(fields >> job >> request >> count));
    REQUIRE(job < jobs.size());
    const std::size_t k = next[job]++;
    REQUIRE(k < jobs[job].requests.size());
    REQUIRE(static_cast<index_t>(request) == jobs[job].requests[k]);
    bool ok = true;
    for (std::size_t i = 0; i < count && ok; ++i) {
      std::size_t v = 0;
      double s = 0;
      ok = static_cast<bool>(fields >> v >> s) && v < num_items;
      if (ok) out[job][k][v] = s;
    }
    INFO("scores.txt line " << lines + 1);
    REQUIRE(ok);
    ++lines;
  }
  std::size_t expected = 0;
  for (const auto& job : jobs) expected += job.requests.size();
  REQUIRE(lines == expected);
  return out;
}

}  // namespace

TEST_CASE("session kNN: every model and option set equals the brute-force reference on real JD sessions",
          "[model][knn][oracle]") {
  const auto& data = jd_appliances();
  const std::size_t V = data.item_vocab.size();
  REQUIRE(data.train.size() > 500);
  REQUIRE(data.test.size() > 100);

  // The requests: up to 400 test sessions (all 368 of this split); each option set scores 300 of
  // them, a window that moves along (so that together the sets see every request many times).
  const std::size_t R = std::min<std::size_t>(400, data.test.size());
  std::vector<index_t> ids(R);
  for (std::size_t i = 0; i < R; ++i) ids[i] = static_cast<index_t>(i * data.test.size() / R);
  embsr::BatchBuilder builder;
  embsr::HostBatch requests;
  builder.build(data.test, embsr::Span<const index_t>(ids.data(), ids.size()), requests);

  const auto sets = option_sets();
  const std::size_t per_set = std::min<std::size_t>(300, R);
  std::vector<Job> jobs;
  for (std::size_t j = 0; j < sets.size(); ++j) {
    Job job{sets[j].first, sets[j].second, {}};
    for (std::size_t i = 0; i < per_set; ++i) job.requests.push_back(static_cast<index_t>((j * 53 + i) % R));
    jobs.push_back(std::move(job));
  }
  const std::string dir = embsr::test::scratch_dir();
  write_input(dir + "/input.json", data, requests, jobs);
  const auto reference = run_reference(dir, jobs, V);

  const double tol = 1e-6;
  std::size_t failed_jobs = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const Job& job = jobs[j];
    std::string label = job.model;
    for (const auto& [key, value] : job.options) label += " " + key + "=" + value;
    INFO("job " << j << ": " << label << " (exchange directory " << dir << ")");
    // One batch of the job's requests, scored at once.
    std::vector<index_t> sub;
    for (const index_t r : job.requests) sub.push_back(ids[static_cast<std::size_t>(r)]);
    embsr::HostBatch host;
    builder.build(data.test, embsr::Span<const index_t>(sub.data(), sub.size()), host);
    const auto batch = embsr::to_memory_space<Memory>(host);
    const auto got = knn_scores(job.model, model_options(data, job.options), data.train, batch);
    REQUIRE(got.size() == job.requests.size() * V);
    std::size_t bad = 0, nonzero = 0;
    double worst = 0;
    for (std::size_t k = 0; k < job.requests.size(); ++k) {
      const std::vector<double>& want = reference[j][k];
      double scale = 0;
      for (const double w : want) scale = std::max(scale, std::abs(w));
      for (std::size_t v = 0; v < V; ++v) {
        const double a = got[k * V + v], b = want[v];
        nonzero += b != 0.0;
        const double err = std::abs(a - b);
        worst = std::max(worst, err / (std::max(std::abs(b), 1e-6 * scale) + 1e-300));
        if (err > tol * (std::max(std::abs(a), std::abs(b)) + 1e-6 * scale) && bad++ < 3) {
          INFO("request " << job.requests[k] << " (test example " << sub[k] << "), item " << v << ": embsr " << a
                          << ", reference " << b);
          CHECK(err <= tol * (std::max(std::abs(a), std::abs(b)) + 1e-6 * scale));
        }
      }
    }
    INFO(bad << " mismatches, worst relative error " << worst << ", " << nonzero << " nonzero reference scores");
    CHECK(bad == 0);
    CHECK(nonzero > job.requests.size());  // the models do score something
    failed_jobs += bad != 0;
    if (std::getenv("EMBSR_KNN_REFERENCE_VERBOSE") != nullptr)
      std::printf("knn reference: %-90s %4zu requests %7zu nonzero, worst relative error %.3g\n", label.c_str(),
                  job.requests.size(), nonzero, worst);
  }
  // The exchange directory (about 12 MB of scores) stays behind only for a failure to inspect.
  if (failed_jobs == 0) std::filesystem::remove_all(dir);
}

TEST_CASE("session kNN: vstan-ops with op_power 0 is exactly VSTAN", "[model][knn]") {
  const auto& data = jd_appliances();
  std::vector<index_t> ids;
  for (index_t e = 0; e < static_cast<index_t>(std::min<std::size_t>(200, data.test.size())); ++e) ids.push_back(e);
  embsr::BatchBuilder builder;
  embsr::HostBatch host;
  builder.build(data.test, embsr::Span<const index_t>(ids.data(), ids.size()), host);
  const auto batch = embsr::to_memory_space<Memory>(host);
  for (const Options& extra : {Options{}, Options{{"sample_size", "20"}, {"remind", "false"}, {"lambda_idf", "1"}},
                               Options{{"sampling", "random"}, {"seed", "4"}, {"sample_size", "25"}, {"k", "7"}}}) {
    Options ops = extra;
    ops.emplace_back("op_power", "0");
    const auto vstan = knn_scores("vstan", model_options(data, extra), data.train, batch);
    const auto ops0 = knn_scores("vstan-ops", model_options(data, ops), data.train, batch);
    REQUIRE(vstan.size() == ops0.size());
    std::size_t differ = 0, nonzero = 0;
    for (std::size_t i = 0; i < vstan.size(); ++i) differ += vstan[i] != ops0[i], nonzero += vstan[i] != 0.0;
    CHECK(differ == 0);
    CHECK(nonzero > ids.size());
  }
}

}  // namespace test_session_knn_reference
