// Uses the installed umbrella header: builds a tiny dataset, preprocesses it, and packs a batch on
// the default Kokkos memory space. Exits non-zero if anything is off.
#include <embsr/embsr.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  embsr::SessionDataset data;
  data.op_vocab = embsr::Vocabulary({"view", "cart"});
  for (const char* item : {"a", "b", "c"}) data.item_vocab.add(item);
  const embsr::MicroBehavior session[] = {{0, 0, 1.0}, {0, 1, 2.0}, {1, 0, 3.0}, {2, 0, 4.0}};
  data.add_session(embsr::Span<const embsr::MicroBehavior>(session, 4), 4.0, "s1");
  if (data.num_sessions() != 1 || data.num_events() != 4) return 1;
  std::printf("embsr consumer OK (%s)\n", embsr::version_string());
  return 0;
}
