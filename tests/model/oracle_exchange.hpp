#pragma once
// The C++ side of the PyTorch oracles (tests/oracle/*.py): real sessions, the exchange directory
// (config, parameters, batch; tests/oracle/README.md), running a script on it, and comparing its
// outputs. Shared by tests/model/test_oracle.cpp (EMBSR), test_graph_oracle.cpp (SR-GNN family) and
// the sequence family's test_oracle_<model>.cpp.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/model/parameters.hpp>

#include "data_paths.hpp"
#include "gradcheck.hpp"
#include "npy.hpp"

namespace embsr::test::oracle {

// Real sessions: the first `count` test examples of JD Computers (support 5, L 30).
inline const embsr::PreparedData& jd_computers() {
  static const embsr::PreparedData data = [] {
    const auto raw = embsr::load_jd({embsr::test::jd_computers_hup(), embsr::test::jd_computers_micro()});
    embsr::PreprocessOptions o;
    o.min_item_support = 5;
    o.max_length = 30;
    return embsr::preprocess(raw, o);
  }();
  return data;
}

struct OracleRun {
  std::vector<double> scores;  // [B x V]
  double loss = 0;
  std::vector<std::vector<double>> grads;  // per parameter entry
  std::string dir;                         // the exchange directory (config, parameters, batch, outputs)
};

// A configured path, unless the environment variable of the same name overrides it (a binary run
// on another machine, as by scripts/gpu-check.sh).
inline std::string setting(const char* name, const char* configured) {
  const char* env = std::getenv(name);
  return std::string(env != nullptr && *env != '\0' ? env : configured);
}

// Writes `config` (JSON text), the model's parameters (double) and the batch (with op0) to a fresh
// exchange directory, runs tests/oracle/SCRIPT on it, and reads back its outputs.
template <class Model>
OracleRun run_oracle(const char* script, const std::string& config, const Model& model, const embsr::HostBatch& host,
                     const std::vector<embsr::index_t>& op0) {
  const std::string dir = embsr::test::scratch_dir();
  REQUIRE(std::system(("mkdir -p " + dir + "/params " + dir + "/batch " + dir + "/out").c_str()) == 0);
  std::ofstream(dir + "/config.json") << config;
  const auto values = embsr::test::to_vector(model.parameters().values());
  for (const auto& e : model.parameters().entries())
    embsr::test::write_npy(dir + "/params/" + e.name + ".npy", values.data() + e.offset, {e.rows, e.cols});
  host.for_each([&](const char* name, const std::vector<embsr::index_t>& v) {
    embsr::test::write_npy(dir + "/batch/" + name + ".npy", v.data(), {v.size()});
  });
  embsr::test::write_npy(dir + "/batch/op0.npy", op0.data(), {op0.size()});

  const std::string cmd = setting("EMBSR_PYTHON", EMBSR_PYTHON) + " " + setting("EMBSR_SOURCE_DIR", EMBSR_SOURCE_DIR) +
                          "/tests/oracle/" + script + " " + dir + " > " + dir + "/oracle.log 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream log(dir + "/oracle.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    FAIL("oracle failed (" << rc << "): " << cmd << "\n" << text);
  }
  OracleRun out;
  out.dir = dir;
  out.scores = embsr::test::read_npy_f64(dir + "/out/scores.npy").data;
  out.loss = embsr::test::read_npy_f64(dir + "/out/loss.npy").data.at(0);
  for (const auto& e : model.parameters().entries()) {
    out.grads.push_back(embsr::test::read_npy_f64(dir + "/out/grad_" + e.name + ".npy").data);
    REQUIRE(out.grads.back().size() == e.size());
  }
  return out;
}

// |a - b| <= tol * (max(|a|, |b|) + scale): relative, with the array's own scale as floor so
// that entries that are zero up to round-off do not count as mismatches. `global` (the largest
// gradient of the model) sets a last floor, tol * 1e-3 * global, for arrays whose true value is
// zero (the gradient of star.b_k2 vanishes: a bias on all softmax logits of a session cancels).
inline void compare(const std::string& what, const std::vector<double>& got, const std::vector<double>& want, double tol,
             double global = 0) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-3 * global;
  for (double w : want) scale = std::max(scale, std::abs(w));
  std::size_t bad = 0;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]);
    const double allowed = tol * std::max(std::abs(got[i]), std::abs(want[i])) + tol * scale;
    worst = std::max(worst, err / (std::max(std::abs(want[i]), scale) + 1e-300));
    if (err > allowed && bad++ < 3) {
      INFO(what << "[" << i << "]: embsr " << got[i] << ", oracle " << want[i]);
      CHECK(err <= allowed);
    }
  }
  INFO(what << ": " << bad << " mismatches, worst relative error " << worst);
  CHECK(bad == 0);
}

// The model's loss and gradients (after loss_and_backward) and, given, its scores against the
// oracle's, each tensor to `tol` relative (see compare).
template <class Model>
void compare_model(Model& model, const OracleRun& oracle, double loss, double tol, const std::vector<double>* scores) {
  CHECK(std::abs(loss - oracle.loss) <= tol * std::abs(oracle.loss));
  const auto grads = embsr::test::to_vector(model.parameters().grads());
  double global = 0;
  for (const auto& g : oracle.grads)
    for (double x : g) global = std::max(global, std::abs(x));
  std::size_t p = 0;
  for (const auto& e : model.parameters().entries()) {
    std::vector<double> g(grads.begin() + static_cast<std::ptrdiff_t>(e.offset),
                          grads.begin() + static_cast<std::ptrdiff_t>(e.offset + e.size()));
    compare("grad " + e.name, g, oracle.grads[p++], tol, global);
  }
  if (scores != nullptr) compare("scores", *scores, oracle.scores, tol);
}

// The first `count` examples of `set` as a host batch.
inline embsr::HostBatch first_examples(const embsr::ExampleSet& set, std::size_t count) {
  std::vector<embsr::index_t> ids(std::min(count, set.size()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<embsr::index_t>(i);
  embsr::BatchBuilder builder;
  return builder.build(set, embsr::Span<const embsr::index_t>(ids.data(), ids.size()));
}

// `model` gets `reference`'s parameters (double), rounded once when it is a float model.
template <class Model, class Reference>
void copy_parameters(const Reference& reference, Model& model) {
  using Scalar = typename Model::scalar_type;
  const auto v = embsr::test::to_vector(reference.parameters().values());
  auto h = Kokkos::create_mirror_view(model.parameters().values());
  REQUIRE(h.extent(0) == v.size());
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = static_cast<Scalar>(v[i]);
  Kokkos::deep_copy(model.parameters().values(), h);
}

// ModelOf<Exec, Scalar> built from `config` (the data's sizes filled in) on the first `sessions`
// JD Computers test sessions against tests/oracle/SCRIPT, whose exchange config is
// config_json(config): the double model's parameters (the seed's) are exported, the model under
// test gets them (rounded once in float); its scores, loss and every gradient (training step 0) to
// `tol` relative. Exec is the default space: the device in a CUDA build, oracle parity there too.
template <template <class, class> class ModelOf, class Scalar, class Config, class ToJson>
void check_against_oracle(const char* script, Config config, const ToJson& config_json, std::size_t sessions,
                          double tol) {
  using Exec = Kokkos::DefaultExecutionSpace;
  const auto& data = jd_computers();
  config.num_items = static_cast<int>(data.item_vocab.size());
  config.num_ops = static_cast<int>(data.op_vocab.size());
  const auto host = first_examples(data.test, sessions);
  const auto batch = embsr::to_memory_space<typename Exec::memory_space>(host);
  ModelOf<Exec, double> reference(config);
  ModelOf<Exec, Scalar> model(config);
  const auto oracle = run_oracle(script, config_json(config), reference, host, host.next_ops);
  copy_parameters(reference, model);
  const auto scores = embsr::test::to_vector(model.scores(batch));
  const double loss = model.loss_and_backward(batch, 0, true);
  compare_model(model, oracle, loss, tol, &scores);
}

}  // namespace embsr::test::oracle
