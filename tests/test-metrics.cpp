// Metrics against hand-computed values.
#include <gtest/gtest.h>

#include "adcorre/eval/metrics.h"
#include "adcorre/util/error.h"

using namespace adcorre;

TEST(Metrics, HandComputed) {
  // classes a, b, c; truth/prediction pairs:
  // a->a, a->a, a->b, b->b, b->c, c->c, c->c, c->c, c->a
  std::vector<int64_t> t{0, 0, 0, 1, 1, 2, 2, 2, 2};
  std::vector<int64_t> p{0, 0, 1, 1, 2, 2, 2, 2, 0};
  auto m = eval::compute_metrics({"a", "b", "c"}, t, p);
  EXPECT_EQ(m.n, 9);
  EXPECT_NEAR(m.accuracy, 6.0 / 9, 1e-12);
  // recalls: a 2/3, b 1/2, c 3/4 -> mean 0.638888...
  EXPECT_NEAR(m.mean_class_accuracy, (2.0 / 3 + 0.5 + 0.75) / 3, 1e-12);
  // precision a: predicted a = 3 (2 right) -> 2/3; b: predicted 2 (1 right) -> 1/2; c: predicted 4 (3 right) -> 3/4
  EXPECT_NEAR(m.per_class[0].precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.per_class[1].precision, 0.5, 1e-12);
  EXPECT_NEAR(m.per_class[2].precision, 0.75, 1e-12);
  EXPECT_NEAR(m.per_class[2].f1, 0.75, 1e-12);
  EXPECT_EQ(m.per_class[2].support, 4);
  auto conf = m.confusion();
  EXPECT_NEAR(conf[1][2], 0.5, 1e-12);
  EXPECT_NEAR(conf[2][0], 0.25, 1e-12);
  auto j = m.to_json();
  for (auto key : {"accuracy", "mean_class_accuracy", "per_class", "confusion", "classes", "n"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST(Metrics, ClassWithoutSamplesIsLeftOutOfTheMean) {
  auto m = eval::compute_metrics({"a", "b", "c"}, {0, 0, 1}, {0, 1, 1});
  EXPECT_NEAR(m.mean_class_accuracy, (0.5 + 1.0) / 2, 1e-12);
  EXPECT_EQ(m.confusion()[2][0], 0.0);
  EXPECT_THROW(eval::compute_metrics({"a"}, {0}, {1}), Error);
}
