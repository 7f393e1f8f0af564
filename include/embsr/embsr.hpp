#pragma once
// embsr: EMBSR session-based recommendation with micro-behaviors (Yuan et al., ICDE 2022),
// header-only on Kokkos. Include this one header to get the whole public API.

#include <embsr/version.hpp>

// core
#include <embsr/core/error.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/types.hpp>

// data: loading, vocabularies, preprocessing, batching
#include <embsr/data/csv_reader.hpp>
#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/ragged_batch.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/session_structure.hpp>
#include <embsr/data/statistics.hpp>
#include <embsr/data/trivago_loader.hpp>
#include <embsr/data/vocabulary.hpp>

// graph: the session multigraph
#include <embsr/graph/session_multigraph.hpp>
