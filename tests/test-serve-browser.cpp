// The web page in a real browser: Debian's headless chromium loads the page
// from an in-process server, uploads the sample photo through the file input,
// and tests/browser/serve_page.py checks that the boxes and bar charts are
// rendered, that a fake-webcam snapshot works, and that the page never
// reaches another origin. Screenshots land in the build folder. Skips when
// chromium or python3 is absent.
#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "serve_fixture.h"

using namespace adcorre;

namespace {
std::string chromium() {
  if (const char* env = std::getenv("CHROMIUM"); env && *env) return env;
  return "/usr/bin/chromium";
}
}  // namespace

TEST(ServeBrowser, PageRendersThePrediction) {
  if (!std::filesystem::exists(chromium())) GTEST_SKIP() << "no chromium at " << chromium() << " (apt-get install chromium)";
  if (test::run_command("python3 --version", nullptr, true) != 0) GTEST_SKIP() << "no python3";
  test::ServeFixture fx;
  const std::string photo = test::sample_photo(fx.dir);
  if (photo.empty()) GTEST_SKIP() << "no sample photo";

  const std::string shot = std::string(ADCORRE_BUILD_DIR) + "/serve-page.png";
  const std::string webcam_shot = std::string(ADCORRE_BUILD_DIR) + "/serve-page-webcam.png";
  std::filesystem::remove(shot);
  std::filesystem::remove(webcam_shot);
  const std::string cmd = "python3 " + std::string(ADCORRE_SOURCE_DIR) + "/tests/browser/serve_page.py --url " + fx.server->url() +
                          " --image '" + photo + "' --screenshot '" + shot + "' --chromium '" + chromium() + "' --webcam";
  std::string output;
  const int rc = test::run_command(cmd, &output, true);
  std::cout << output;
  ASSERT_EQ(rc, 0) << output;

  for (const auto& path : {shot, webcam_shot}) {
    cv::Mat img = cv::imread(path);
    ASSERT_FALSE(img.empty()) << path;
    EXPECT_GE(img.cols, 800) << path;
    EXPECT_GE(img.rows, 400) << path;
  }
}
