// interop_scores: the C++ side of the PyTorch interop tests (tests/interop/test_torch_bridge.py).
//
//   interop_scores MODEL HISTORIES OUT [RESAVED]
// loads MODEL through chord's reader (every check of models/model_file.hpp and io/safetensors.hpp),
// reads HISTORIES (one line per history: "user item item ...", oldest first; user is the dense index,
// unused by SASRec) and writes OUT, per mode (fp32 without a kernel table, fp32 with the best table,
// W8A8 and W4A8: every quantizable layer at 8 / 4 bits, int8 activations) and history, a line
//   "<mode> <history> <score of item 1> ... <score of item N>"     (score_all, %.9g)
// RESAVED: the model saved again by chord's writer (the test compares its bytes with the file the
// Python bridge wrote: one definition of the format, two writers that must agree).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chord/models/caser_inference.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"

namespace {

struct History {
  std::int32_t user = 0;
  std::vector<std::int32_t> items;
};

template <typename Engine>
void write_scores(const Engine& engine, const char* mode, const std::vector<History>& histories, std::FILE* out) {
  auto scratch = engine.make_scratch();
  std::vector<float> state(engine.state_size()), scores(std::size_t(engine.num_items()) + 1);
  for (std::size_t k = 0; k < histories.size(); ++k) {
    engine.encode(histories[k].user, histories[k].items.data(), histories[k].items.size(), scratch, state.data());
    engine.score_all(state.data(), scores.data(), scratch);
    std::fprintf(out, "%s %zu", mode, k);
    for (std::size_t i = 1; i < scores.size(); ++i) std::fprintf(out, " %.9g", double(scores[i]));
    std::fprintf(out, "\n");
  }
}

template <typename Engine, typename Model, typename Layers>
void all_modes(const Model& model, const Layers& layers, const std::vector<History>& histories, std::FILE* out) {
  write_scores(Engine(model, chord::models::InferenceOptions{}), "fp32", histories, out);
  chord::models::InferenceOptions with_table;
  with_table.kernels = &chord::best_kernels();
  write_scores(Engine(model, with_table), "fp32-simd", histories, out);
  for (int bits : {8, 4}) {
    chord::models::InferenceOptions q;
    q.mode = chord::LinearMode::mixed_s8;
    q.kernels = &chord::best_kernels();
    for (const auto& layer : layers) q.bits.emplace_back(layer.channels, std::uint8_t(bits));
    write_scores(Engine(model, q), bits == 8 ? "w8a8" : "w4a8", histories, out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: interop_scores MODEL HISTORIES OUT [RESAVED]\n");
    return 2;
  }
  try {
    const chord::models::LoadedModel loaded = chord::models::load_model(argv[1]);
    std::vector<History> histories;
    std::ifstream in(argv[2]);
    CHORD_CHECK(in.good(), "cannot read '", argv[2], "'");
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      History h;
      CHORD_CHECK(bool(fields >> h.user), argv[2], ": line ", histories.size() + 1, " has no user");
      for (std::int32_t item; fields >> item;) h.items.push_back(item);
      histories.push_back(std::move(h));
    }
    std::FILE* out = std::fopen(argv[3], "w");
    CHORD_CHECK(out != nullptr, "cannot write '", argv[3], "'");
    if (loaded.sasrec)
      all_modes<chord::models::SasrecInference>(*loaded.sasrec, chord::models::describe(loaded.sasrec->config()).quantizable_shapes(),
                                                histories, out);
    else
      all_modes<chord::models::CaserInference>(*loaded.caser, chord::models::describe(loaded.caser->config()).quantizable_shapes(),
                                               histories, out);
    std::fclose(out);
    if (argc == 5) {
      if (loaded.sasrec)
        chord::models::save_model(argv[4], *loaded.sasrec, loaded.metadata);
      else
        chord::models::save_model(argv[4], *loaded.caser, loaded.metadata);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interop_scores: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
