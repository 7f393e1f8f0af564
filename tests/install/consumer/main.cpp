// Uses only the installed package: builds a tiny dataset, preprocesses it, packs a batch on the
// default Kokkos memory space and runs two training steps of EMBSR. Exits non-zero if anything is off.
#include <embsr/embsr.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using Exec = Kokkos::DefaultExecutionSpace;

  embsr::SessionDataset raw;
  raw.op_vocab = embsr::Vocabulary({"view", "cart"});
  for (const char* item : {"a", "b", "c", "d"}) raw.item_vocab.add(item);
  const std::vector<embsr::MicroBehavior> s1{{0, 0, 1.0}, {0, 1, 2.0}, {1, 0, 3.0}, {2, 0, 4.0}};
  const std::vector<embsr::MicroBehavior> s2{{3, 0, 5.0}, {1, 1, 6.0}, {0, 0, 7.0}};
  raw.add_session(embsr::Span<const embsr::MicroBehavior>(s1.data(), s1.size()), 4.0, "s1");
  raw.add_session(embsr::Span<const embsr::MicroBehavior>(s2.data(), s2.size()), 7.0, "s2");
  embsr::PreprocessOptions pre;
  pre.train_fraction = 1.0;
  pre.valid_fraction = 0.0;
  const embsr::PreparedData data = embsr::preprocess(raw, pre);
  if (data.train.size() != 2) return 1;

  embsr::Config config;
  config.num_items = data.item_vocab.size();
  config.num_ops = data.op_vocab.size();
  config.d = 8;
  config.max_length = 10;
  embsr::EMBSR<Exec, float> model(config);
  embsr::Adam<Exec, float> adam(model.num_parameters(), embsr::AdamOptions{});

  embsr::BatchSampler sampler(data.train.size(), 2, /*shuffle=*/true, /*seed=*/1);
  embsr::BatchBuilder builder;
  embsr::HostBatch host;
  embsr::Batch<Exec::memory_space> batch;
  double loss = 0;
  for (std::uint64_t step = 0; step < 2; ++step) {
    builder.build(data.train, sampler.batch(0), host);
    batch.copy_from(host);
    loss = model.loss_and_backward(batch, step);
    adam.step(Exec(), model.parameters().values(), model.parameters().grads());
  }
  if (!std::isfinite(loss)) return 1;
  std::printf("embsr consumer OK (%s): %zu parameters, loss %.4f\n", embsr::version_string(), model.num_parameters(), loss);
  return 0;
}
