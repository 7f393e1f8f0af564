// libFuzzer harness for the checkpoint reader (io/checkpoint_format.hpp).
//
// Input: byte 0 selects the mode, the rest is the file. Bit 0 clear: the harness first re-patches
// the header's size field and the FNV-1a trailer, as an attacker would, so that mutations reach the
// contents behind the checksum; bit 0 set: the bytes are read as they are (the size and checksum
// checks themselves). The memory limit is 256 MiB: a checkpoint that would need more is refused.
//
// Everything the reader may throw is a DataError; any other exception, crash, sanitizer report,
// or allocation past libFuzzer's -rss_limit_mb is a finding. A checkpoint that loads must encode
// again and load back to the same checksum-verified contents. The tables of a neighbourhood model
// are then loaded as its index (model/knn_index.hpp), which must refuse what is broken with an
// InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <embsr/io/checkpoint_format.hpp>
#include <embsr/model/knn_index.hpp>

namespace {

void repatch(std::vector<unsigned char>& b) {
  if (b.size() < 24 + 8) return;
  const std::uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[16 + static_cast<std::size_t>(i)] = static_cast<unsigned char>((size >> (8 * i)) & 0xff);
  const std::size_t body = b.size() - 8;
  const std::uint64_t h = embsr::detail::fnv1a64(b.data(), body);
  for (int i = 0; i < 8; ++i) b[body + static_cast<std::size_t>(i)] = static_cast<unsigned char>((h >> (8 * i)) & 0xff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::vector<unsigned char> file(data + 1, data + size);
  if ((data[0] & 1) == 0) repatch(file);
  embsr::CheckpointLimits limits;
  limits.memory_bytes = 256ULL << 20;
  embsr::Checkpoint ck;
  try {
    ck = embsr::detail::decode_checkpoint_bytes("fuzz.ckpt", file.data(), file.size(), limits, limits.memory_bytes);
  } catch (const embsr::DataError&) {
    return 0;
  }
  // Accepted: it must be consistent, so it encodes, and the encoding reads back.
  const std::string again = embsr::encode_checkpoint(ck);
  const auto* bytes = reinterpret_cast<const unsigned char*>(again.data());
  const embsr::Checkpoint back = embsr::detail::decode_checkpoint_bytes("again.ckpt", bytes, again.size(), limits, limits.memory_bytes);
  if (back.values != ck.values || back.entries.size() != ck.entries.size()) std::abort();
  if (ck.model == "sknn" || ck.model == "v-sknn" || ck.model == "stan" || ck.model == "vstan" || ck.model == "vstan-ops") {
    const std::uint64_t items = embsr::detail::checkpoint_option_count(ck.options, "num_items");
    const std::uint64_t ops = embsr::detail::checkpoint_option_count(ck.options, "num_ops");
    if (items < 1 || items > (1u << 24) || ops < 1 || ops > 64) return 0;  // the spec's validate refuses these first
    std::vector<std::vector<std::int64_t>> tables;
    for (const auto& t : ck.tables) tables.push_back(t.values);
    try {
      (void)embsr::knn_index_from_tables(tables, static_cast<int>(items), static_cast<int>(ops));
    } catch (const embsr::InvalidArgument&) {
    }
  }
  return 0;
}
