// tests/save_loop.cpp: the victim of tests/kill_saves.sh, which SIGKILLs it at random moments.
//   save_loop loop  <path>   saves a ~8 MB SASRec model to <path> again and again (atomic writes)
//   save_loop once  <path>   saves it once (the "next successful save", which removes stale temporaries)
//   save_loop check <path>   loads <path>; exit 0 when it is a complete model
#include <cstdio>
#include <cstring>
#include <string>

#include "chord/core/error.hpp"
#include "chord/models/model_file.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: save_loop loop|once|check <path>\n");
    return 2;
  }
  const std::string mode = argv[1], path = argv[2];
  try {
    if (mode == "check") {
      const chord::models::LoadedModel m = chord::models::load_model(path, "sasrec");
      return m.sasrec ? 0 : 1;
    }
    chord::models::SasrecConfig c;
    c.num_items = 30000, c.d = 64, c.blocks = 2, c.heads = 1, c.max_len = 50, c.hidden = 64;
    chord::models::SasrecModel model(c);
    // no init(): zero weights load as well, and the process is saving from its first milliseconds
    do {
      chord::models::save_model(path, model, {{"train.note", "kill_saves victim"}});
    } while (mode == "loop");
    return 0;
  } catch (const chord::Error& e) {
    std::fprintf(stderr, "save_loop: %s\n", e.what());
    return 1;
  }
}
