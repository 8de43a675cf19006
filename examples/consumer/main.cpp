// fer-example: the expression of every face in a photo, through adcorre's
// public API (adcorre/api/recognizer.h; no LibTorch header needed).
//   fer-example PHOTO [MODEL]
// prints the model used, then one JSON line per face, largest first:
//   {"box":[x,y,w,h],"label":"happy","score":0.93,"probs":{"angry":0.01,...}}
#include <iostream>

#include <adcorre/api/recognizer.h>
#include <adcorre/util/error.h>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: fer-example PHOTO [MODEL]\n";
    return 2;
  }
  try {
    adcorre::api::RecognizerOptions opts;
    if (argc == 3) opts.model = argv[2];  // else the shipped model, found next to the installed library
    adcorre::api::Recognizer recognizer(opts);
    const auto& names = recognizer.class_names();
    std::cout << "model " << recognizer.info().path << "\n";
    for (const auto& face : recognizer.predict_file(argv[1])) {
      nlohmann::json j;
      j["box"] = {face.box.x, face.box.y, face.box.width, face.box.height};
      j["label"] = face.label;
      j["score"] = face.score;
      for (size_t c = 0; c < names.size(); ++c) j["probs"][names[c]] = face.probs[c];
      std::cout << j.dump() << "\n";
    }
  } catch (const adcorre::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
