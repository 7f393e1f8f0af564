#pragma once
// embsr: EMBSR session-based recommendation with micro-behaviors (Yuan et al., ICDE 2022),
// header-only on Kokkos. Include this one header to get the whole public API.

#include <embsr/version.hpp>

// core
#include <embsr/core/checks.hpp>
#include <embsr/core/communicator.hpp>
#include <embsr/core/dropout.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/memory.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/random.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>

// data: loading, vocabularies, preprocessing
#include <embsr/data/csv_reader.hpp>
#include <embsr/data/delimited_loader.hpp>
#include <embsr/data/example_set.hpp>
#include <embsr/data/jd_loader.hpp>
#include <embsr/data/line_reader.hpp>
#include <embsr/data/load_options.hpp>
#include <embsr/data/otto_loader.hpp>
#include <embsr/data/parse_fields.hpp>
#include <embsr/data/preprocess.hpp>
#include <embsr/data/session_dataset.hpp>
#include <embsr/data/session_grouping.hpp>
#include <embsr/data/statistics.hpp>
#include <embsr/data/synthetic_log.hpp>
#include <embsr/data/trivago_loader.hpp>
#include <embsr/data/vocabulary.hpp>

// graph: a session's structure and its multigraph
#include <embsr/graph/session_multigraph.hpp>
#include <embsr/graph/session_structure.hpp>

// batch: ragged batches, their builder and sampler, the batch validator
#include <embsr/batch/batch.hpp>
#include <embsr/batch/batch_builder.hpp>
#include <embsr/batch/batch_validator.hpp>

// layers: forward/backward pairs with hand-derived gradients
#include <embsr/layers/attention.hpp>
#include <embsr/layers/context_attention.hpp>
#include <embsr/layers/embedding.hpp>
#include <embsr/layers/fusion.hpp>
#include <embsr/layers/gelu.hpp>
#include <embsr/layers/ggnn.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/highway.hpp>
#include <embsr/layers/inputs.hpp>
#include <embsr/layers/layer_norm.hpp>
#include <embsr/layers/repeat.hpp>
#include <embsr/layers/repeat_mixture.hpp>
#include <embsr/layers/linear.hpp>
#include <embsr/layers/multi_head_attention.hpp>
#include <embsr/layers/scoring.hpp>
#include <embsr/layers/self_attention_block.hpp>
#include <embsr/layers/sequence_gru.hpp>
#include <embsr/layers/sequence_lstm.hpp>
#include <embsr/layers/soft_attention_readout.hpp>
#include <embsr/layers/star.hpp>
#include <embsr/layers/top_k.hpp>

// model, training, evaluation
#include <embsr/model/bert4rec.hpp>
#include <embsr/model/config.hpp>
#include <embsr/model/embsr.hpp>
#include <embsr/model/embsr_activations.hpp>
#include <embsr/model/embsr_spec.hpp>
#include <embsr/model/gcsan.hpp>
#include <embsr/model/hup.hpp>
#include <embsr/model/knn_index.hpp>
#include <embsr/model/mkmsr.hpp>
#include <embsr/model/model_options.hpp>
#include <embsr/model/narm.hpp>
#include <embsr/model/neural_model.hpp>
#include <embsr/model/parameter_layout.hpp>
#include <embsr/model/parameters.hpp>
#include <embsr/model/popularity.hpp>
#include <embsr/model/registry.hpp>
#include <embsr/model/rib.hpp>
#include <embsr/model/session_knn.hpp>
#include <embsr/model/session_model.hpp>
#include <embsr/model/stamp.hpp>
#include <embsr/model/sgnnhn.hpp>
#include <embsr/model/srgnn.hpp>
#include <embsr/optim/adam.hpp>
#include <embsr/optim/adam_options.hpp>
#include <embsr/train/baselines.hpp>
#include <embsr/train/evaluate.hpp>
#include <embsr/train/metrics.hpp>
#include <embsr/train/progress.hpp>
#include <embsr/train/trainer.hpp>
#include <embsr/train/tuner.hpp>

// checkpoints and inference
#include <embsr/io/atomic_file.hpp>
#include <embsr/io/checkpoint.hpp>
#include <embsr/io/checkpoint_format.hpp>
#include <embsr/serve/recommender.hpp>
#include <embsr/serve/request_parser.hpp>
