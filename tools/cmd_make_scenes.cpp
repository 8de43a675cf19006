// adcorre make-scenes: face crops of a class-folder dataset pasted into whole
// pictures with known boxes and labels (eval/scenes.h), for measuring the
// photo path with `adcorre eval --scenes`.
#include <iostream>

#include "adcorre/eval/scenes.h"
#include "cli.h"

namespace {

struct MakeScenesCli {
  std::string data, out;
  adcorre::eval::SceneOptions opts;
};

int run_make_scenes(const MakeScenesCli& o) {
  const auto scenes = adcorre::eval::make_scenes(o.data, o.out, o.opts);
  size_t faces = 0;
  for (const auto& s : scenes) faces += s.faces.size();
  std::cout << "wrote " << scenes.size() << " pictures with " << faces << " faces (" << o.opts.style << ", seed "
            << o.opts.seed << ") and " << o.out << "/truth.jsonl\n";
  return 0;
}

adcorre::cli::Registrar register_make_scenes(
    {"make-scenes", "paste labelled face crops into whole pictures with known boxes (a photo-path benchmark set)", [](CLI::App& app) {
       auto o = std::make_shared<MakeScenesCli>();
       app.add_option("--data", o->data, "class-folder dataset of face crops (e.g. ../shared/data/fer2013/val)")->required();
       app.add_option("--out", o->out, "output folder: the pictures and truth.jsonl")->required();
       app.add_option("--count", o->opts.count, "number of pictures")->check(adcorre::cli::at_least(1))->capture_default_str();
       app.add_option("--style", o->opts.style, "single | multi | dark | bright | jpeg | mixed")->capture_default_str();
       app.add_option("--seed", o->opts.seed, "random seed (the same seed gives the same bytes)")->capture_default_str();
       app.add_option("--width", o->opts.width, "picture width")->capture_default_str();
       app.add_option("--height", o->opts.height, "picture height")->capture_default_str();
       app.add_option("--min-face", o->opts.min_face, "smallest face side in px (0: the style's)")->capture_default_str();
       app.add_option("--max-face", o->opts.max_face, "largest face side in px (0: the style's)")->capture_default_str();
       return [o] { return run_make_scenes(*o); };
     }});

}  // namespace
