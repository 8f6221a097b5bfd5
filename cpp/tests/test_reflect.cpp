#include <gtest/gtest.h>

#include "noiselab/box_moments.hpp"
#include "reference.hpp"

using noiselab::detail::AxisPlan;
using noiselab::detail::reflect_index;

TEST(Reflect, MatchesRepeatedMirroringFarOutside) {
    for (std::size_t n = 1; n <= 9; ++n)
        for (std::ptrdiff_t j = -60; j < 60; ++j) EXPECT_EQ(reflect_index(j, n), ref::mirror(j, n)) << n << " " << j;
}

TEST(Reflect, WindowMultiplicitiesAddUpToTheWindow) {
    for (std::size_t n : {2u, 3u, 7u})
        for (std::size_t w : {2u, 3u, 4u, 10u, 20u, 33u})
            for (std::size_t s = 0; s < n; ++s) {
                AxisPlan p(n, w);
                std::vector<double> expect(n, 0.0);
                for (std::size_t k = 0; k < w; ++k)
                    expect[ref::mirror(static_cast<std::ptrdiff_t>(s + k) - static_cast<std::ptrdiff_t>(w / 2), n)] += 1;
                std::vector<double> got(n, 0.0);
                for (auto [j, c] : p.window_at(s)) got[j] = c;
                EXPECT_EQ(got, expect) << "n=" << n << " w=" << w << " s=" << s;
            }
}

TEST(Reflect, HugeWindowIsCheap) {
    AxisPlan p(5, 1000000001u);  // must not allocate or loop O(w)
    double total = 0;
    for (auto [j, c] : p.start0) total += c;
    EXPECT_EQ(total, 1000000001.0);
}
