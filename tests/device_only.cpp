// The device path without the training code: this translation unit includes personalize/device.hpp
// (and the Catch2 main's header) and must compile without any training-only header. Each of those
// (nn/adam.hpp, nn/loss.hpp, personalize/trainer.hpp, relaxation.hpp, hypernetwork.hpp) defines
// CHORD_TRAINING_CODE; if any of them is ever pulled into the device's includes, the build fails here.
// Then it runs CHORD's device side end to end on tiny SASRec and Caser models: a strategy packet is
// decoded, the personalized layers quantized and packed (DeviceModel::adapt), and the scores compared,
// bit for bit, with the W-A8 reference engine built from the full plan of widths.
#include "chord/personalize/device/device_model.hpp"

#ifdef CHORD_TRAINING_CODE
#error "personalize/device.hpp pulled in training-only code (a header defining CHORD_TRAINING_CODE)"
#endif

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "chord/nn/random.hpp"
#include "chord/io/profile_message.hpp"

using namespace chord;
using namespace chord::personalize;

namespace {

// Random levels for the device's layers, with a seeded mix of all four.
StrategyPacket random_packet(const DeviceModel& device, std::uint64_t seed) {
  nn::Rng rng(seed, 1);
  StrategyPacket p;
  p.fingerprint = device.fingerprint();
  p.budget = 4.0f;
  for (const LayerShape& s : device.layers()) {
    p.strategy.levels.emplace_back(s.channels);
    for (std::uint8_t& level : p.strategy.levels.back()) level = std::uint8_t(rng.below(4));
  }
  return p;
}

template <typename Engine>
std::vector<float> reference_scores(const Engine& engine, std::int32_t user, const std::vector<std::int32_t>& history) {
  auto s = engine.make_scratch();
  std::vector<float> state(engine.state_size()), scores(std::size_t(engine.num_items()) + 1);
  engine.encode(user, history.data(), history.size(), s, state.data());
  engine.score_all(state.data(), scores.data(), s);
  return scores;
}

models::LoadedModel through_file(const std::string& name, const models::SasrecModel* sasrec,
                                 const models::CaserModel* caser) {
  const std::string path = "device_only_" + name + ".safetensors";
  if (sasrec) models::save_model(path, *sasrec);
  if (caser) models::save_model(path, *caser);
  models::LoadedModel loaded = models::load_model(path);
  std::remove(path.c_str());
  return loaded;
}

}  // namespace

TEST_CASE("Device path: strategy packets applied on SASRec and Caser equal the W-A8 reference", "[device]") {
  models::SasrecConfig sc;
  sc.num_items = 30, sc.d = 8, sc.blocks = 2, sc.heads = 2, sc.max_len = 6, sc.hidden = 12;
  models::SasrecModel sasrec(sc);
  sasrec.init(1);
  models::CaserConfig cc;
  cc.num_items = 30, cc.num_users = 5, cc.d = 8, cc.L = 3, cc.nh = 2, cc.nv = 2;
  models::CaserModel caser(cc);
  caser.init(2);
  const std::vector<std::int32_t> history = {3, 7, 1, 30, 12, 5, 9, 2};

  for (const bool is_sasrec : {true, false}) {
    const models::LoadedModel loaded =
        is_sasrec ? through_file("sasrec", &sasrec, nullptr) : through_file("caser", nullptr, &caser);
    for (const LinearMode mode : {LinearMode::mixed_s8, LinearMode::mixed_f32}) {
      for (int embedding : {8, 4}) {
        DeviceOptions o;
        o.mode = mode, o.embedding_bits = embedding;
        DeviceModel device(loaded, o);
        REQUIRE(device.fingerprint() == model_fingerprint(personalized_layers(loaded), is_sasrec ? "sasrec" : "caser"));
        REQUIRE(device.layers().size() == (is_sasrec ? 12u : 5u));
        for (std::uint64_t seed : {1u, 2u}) {
          const StrategyPacket packet = random_packet(device, seed);
          const std::vector<std::uint8_t> bytes = encode_strategy(packet);
          for (const Palette& palette : {kStandardPalette, Palette{2, 2, 4, 8}}) {
            const Adaptation a = device.adapt(bytes.data(), bytes.size(), "test", palette);
            REQUIRE(a.packet.strategy.levels == packet.strategy.levels);
            REQUIRE(a.bits == strategy_bits(packet.strategy, palette));
            REQUIRE(a.decode_seconds >= 0.0);
            REQUIRE(a.quantize_seconds >= 0.0);
            const models::InferenceOptions plan{mode, inference_bits(loaded, a.bits, embedding), &best_kernels(), {}};
            REQUIRE(device.bits() == plan.bits);
            const std::int32_t user = 2;
            const std::vector<float> expected =
                is_sasrec ? reference_scores(models::SasrecInference(*loaded.sasrec, plan), user, history)
                          : reference_scores(models::CaserInference(*loaded.caser, plan), user, history);
            REQUIRE(device.score_all(user, history) == expected);
          }
        }
        // damaged and foreign packets are refused and leave the model as it was
        const std::vector<std::vector<std::uint8_t>> before = device.bits();
        std::vector<std::uint8_t> bytes = encode_strategy(random_packet(device, 3));
        bytes[bytes.size() / 2] ^= 0x10;
        REQUIRE_THROWS_AS(device.adapt(bytes.data(), bytes.size(), "damaged"), Error);
        StrategyPacket foreign = random_packet(device, 4);
        foreign.fingerprint ^= 0xFF;
        bytes = encode_strategy(foreign);
        REQUIRE_THROWS_AS(device.adapt(bytes.data(), bytes.size(), "foreign"), Error);
        REQUIRE(device.bits() == before);
      }
    }
    // the profile message a device sends carries its fp32 state
    const DeviceModel device(loaded);
    const std::vector<float> u = device.profile(1, history);
    REQUIRE(u.size() == device.profile_dim());
    const std::vector<std::uint8_t> message = encode_profile({device.fingerprint(), 3.0f, kStandardPalette, u});
    REQUIRE(decode_profile(message, {device.fingerprint(), u.size()}, "device").profile == u);
  }
}
