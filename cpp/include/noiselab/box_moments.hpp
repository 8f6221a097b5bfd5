// Sliding-window (box) sums of several moments at once, in one sweep.
//
// Boundary rule: exactly scipy.ndimage.uniform_filter(x, size, mode="reflect").
// The window of output i covers i - floor(w/2) ... i - floor(w/2) + w - 1, and
// an index j outside [0, n) reflects with period 2n ("d c b a | a b c d | d c b a"),
// which also covers windows longer than the axis.
//
// Memory order: each windowed axis before the last keeps a running sum of slabs, one
// double buffer of the sub-volume after it, moved from one index to the next by adding a
// slab and dropping one. Along the last axis a running sum is a serial chain of additions,
// which no SIMD unit speeds up; so rows go through `lanes` at a time, transposed in cache
// (one row per lane), their running sums advancing together, and transposed back. Each
// input voxel is read from main memory about once and the output written once, and every
// pass over a row is a vector loop.
//
// Precision: sums run in double. For 16-bit data, M^2 sums are exact. M^4 spans
// (A/sigma)^4, and plain running sums would keep rounding residue from bright tissue in
// the background after it (10% error in the local variance at A/sigma = 2e4), so the
// running sums of M^4 (LMMSE) carry a compensation term (TwoSum) on every axis; those of
// M^2 are the same as without M^4, so LMMSE with K = 0 equals the moments correction to
// the bit. Every operation on a lane is the same IEEE operation whatever the vector width,
// so the portable and the AVX2 builds give the same bits (with -ffp-contract=off).
//
// Determinism: the outermost axis is cut into blocks whose size depends only on
// the shape and window, never on the thread count, and every block restarts its
// running sums; per-block statistics are merged in block order.
#pragma once

#include <algorithm>
#include <cmath>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "noiselab/view.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

// The lanes loops keep their sums in registers only as functions of their own: inlined
// into the row loop (GCC 12), they run 30% slower.
#if defined(__GNUC__)
#define NOISELAB_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define NOISELAB_NOINLINE __declspec(noinline)
#else
#define NOISELAB_NOINLINE
#endif

namespace noiselab {

/// Window size per axis; entry d applies to axis d of the view (size 1 leaves it alone).
using Window = std::array<std::size_t, max_ndim>;

/// Number of threads used when an options struct asks for 0 (all available).
inline int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// True when the library was compiled with OpenMP.
inline bool has_openmp() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

namespace detail {

/// Asks for the first bytes of a row that a later step reads (or writes, `write`): the
/// sweep interleaves several streams (two input slabs, the output, the running buffers),
/// and the hardware prefetchers alone leave it waiting on memory a third of the time.
inline void prefetch_row(const void* row, std::size_t bytes, bool write) {
#if defined(__GNUC__)
    const char* p = static_cast<const char*>(row);
    const std::size_t n = std::min<std::size_t>(bytes, 4096);
    for (std::size_t b = 0; b < n; b += 64) {
        if (write) __builtin_prefetch(p + b, 1);
        else __builtin_prefetch(p + b, 0);
    }
    // A prefetch changes no value: without this, GCC finds the callers free of side
    // effects and drops their calls.
    asm volatile("" : : "r"(p));
#else
    (void)row, (void)bytes, (void)write;
#endif
}

/// How many rows of `row_bytes` ahead to prefetch: about 4 KiB ahead.
inline std::size_t rows_ahead(std::size_t row_bytes) {
    return std::clamp<std::size_t>(4096 / std::max<std::size_t>(row_bytes, 1), 1, 16);
}

/// scipy's "reflect": period 2n, edge sample repeated.
inline std::size_t reflect_index(std::ptrdiff_t j, std::size_t n) {
    const auto period = static_cast<std::ptrdiff_t>(2 * n);
    std::ptrdiff_t m = j % period;
    if (m < 0) m += period;
    return m < static_cast<std::ptrdiff_t>(n) ? static_cast<std::size_t>(m)
                                              : static_cast<std::size_t>(period - 1 - m);
}

/// Running-sum schedule for one axis.
struct AxisPlan {
    std::size_t n = 1;
    std::size_t w = 1;
    bool active = false;  // false: the window leaves this axis alone
    // Moving from output i to i + 1 adds sample add[i] and drops sample sub[i].
    std::vector<std::size_t> add, sub;
    // The window of output 0 as (sample, multiplicity) pairs.
    std::vector<std::pair<std::size_t, double>> start0;

    AxisPlan() = default;
    AxisPlan(std::size_t n_, std::size_t w_) : n(n_), w(w_), active(n_ > 1 && w_ > 1) {
        if (!active) return;
        const auto h = static_cast<std::ptrdiff_t>(w / 2);
        const auto ww = static_cast<std::ptrdiff_t>(w);
        add.resize(n - 1);
        sub.resize(n - 1);
        for (std::size_t i = 0; i + 1 < n; ++i) {
            const auto ii = static_cast<std::ptrdiff_t>(i);
            add[i] = reflect_index(ii - h + ww, n);
            sub[i] = reflect_index(ii - h, n);
        }
        start0 = window_at(0);
    }

    /// Multiplicity of each sample in the window of output `s`. O(n), whatever w is:
    /// whole periods of 2n contribute 2 to every sample.
    std::vector<std::pair<std::size_t, double>> window_at(std::size_t s) const {
        const std::size_t period = 2 * n;
        std::vector<double> count(n, 2.0 * static_cast<double>(w / period));
        const auto first = static_cast<std::ptrdiff_t>(s) - static_cast<std::ptrdiff_t>(w / 2);
        for (std::size_t k = 0; k < w % period; ++k)
            count[reflect_index(first + static_cast<std::ptrdiff_t>(k), n)] += 1.0;
        std::vector<std::pair<std::size_t, double>> out;
        for (std::size_t j = 0; j < n; ++j)
            if (count[j] != 0.0) out.emplace_back(j, count[j]);
        return out;
    }
};

/// Rows of the last axis summed side by side, one per lane: the running sum along a row
/// is a serial chain, but `lanes` rows give `lanes` independent chains that vectorise.
/// A constant of the algorithm, not of the machine, so every build adds the same numbers.
inline constexpr std::size_t lanes = 4;

/// A view padded to 4-D by leading axes of extent 1.
template <class T>
struct Padded {
    T* data = nullptr;
    std::array<std::size_t, 4> shape{1, 1, 1, 1};
    std::array<std::ptrdiff_t, 4> strides{0, 0, 0, 0};

    Padded() = default;
    explicit Padded(const ArrayView<T>& v) : data(v.data) {
        const std::size_t off = 4 - v.ndim;
        for (std::size_t d = 0; d < v.ndim; ++d) {
            shape[off + d] = v.shape[d];
            strides[off + d] = v.strides[d];
        }
    }
    T* row(const std::array<std::size_t, 3>& i) const {
        return data + static_cast<std::ptrdiff_t>(i[0]) * strides[0] +
               static_cast<std::ptrdiff_t>(i[1]) * strides[1] +
               static_cast<std::ptrdiff_t>(i[2]) * strides[2];
    }
    std::ptrdiff_t xstride() const { return strides[3]; }
};

/// Shape, windows and the order of work for one sweep.
struct Geometry {
    std::array<std::size_t, 4> n{1, 1, 1, 1};
    std::array<AxisPlan, 4> plan;
    std::array<std::size_t, 4> inner{1, 1, 1, 1};  // product of extents after axis d
    std::array<int, 4> prev_active{-1, -1, -1, -1};  // last active axis before d, or -1
    double inv_volume = 1.0;
    int par_axis = -1;  // outermost axis of extent > 1 among 0..2, cut into blocks
    std::size_t block = 1;
    std::size_t nblocks = 1;
    // The window of each block's first slab on an active par_axis, computed here so
    // that nothing allocates inside the parallel region (bad_alloc there would abort).
    std::vector<std::vector<std::pair<std::size_t, double>>> block_start;

    template <class T>
    Geometry(const ArrayView<T>& v, const Window& window) {
        const std::size_t off = 4 - v.ndim;
        for (std::size_t d = 0; d < v.ndim; ++d) {
            // Reflected indices are computed in std::ptrdiff_t.
            if (window[d] < 1 || window[d] > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()))
                throw std::invalid_argument("noiselab: window sizes must be >= 1 and < 2^63, got " +
                                            std::to_string(window[d]) + " on axis " +
                                            std::to_string(d));
            n[off + d] = v.shape[d];
            plan[off + d] = AxisPlan(v.shape[d], window[d]);
            // A window longer than a whole axis still has w entries: the mean divides by w.
            if (plan[off + d].active) inv_volume /= static_cast<double>(window[d]);
        }
        for (int d = 2; d >= 0; --d) inner[d] = inner[d + 1] * n[d + 1];
        int last = -1;
        for (int d = 0; d < 4; ++d) {
            prev_active[d] = last;
            if (d < 3 && plan[d].active) last = d;
        }
        for (int d = 0; d < 3; ++d)
            if (n[d] > 1) {
                par_axis = d;
                break;
            }
        if (par_axis >= 0) {
            const std::size_t np = n[par_axis];
            // Restarting a running sum costs one window of slabs, so active axes get
            // blocks of 8..32 slabs; inactive ones can split at every index, except
            // rows, which go through the last axis `lanes` at a time.
            block = plan[par_axis].active ? std::clamp<std::size_t>((np + 7) / 8, 8, 32) : 1;
            if (par_axis == 2) block = (block + lanes - 1) / lanes * lanes;
            nblocks = (np + block - 1) / block;
            if (plan[par_axis].active)
                for (std::size_t b = 0; b < nblocks; ++b) block_start.push_back(plan[par_axis].window_at(b * block));
        }
    }

    /// Linear index over axes lo..hi of (idx with axis hi set to j).
    std::size_t linear(const std::array<std::size_t, 3>& idx, int lo, int hi, std::size_t j) const {
        std::size_t off = 0;
        for (int e = lo; e <= hi; ++e) off = off * n[e] + (e == hi ? j : idx[e]);
        return off;
    }
};

/// s + c += x, keeping in c what rounding s loses (Knuth's TwoSum): running sums that
/// add and later subtract huge values then return to small ones without drift.
inline void two_add(double& s, double& c, double x) {
    const double t = s + x;
    const double z = t - s;
    c += (s - (t - z)) + (x - z);
    s = t;
}

/// Whether weight * v rounds for no v: weight, a window multiplicity, is a power of two
/// (it is but for windows longer than twice their axis). Then the compensated sums need no
/// fused multiply-add for the product's error, which the portable build would call from libm.
inline bool exact_product(double weight) {
    int e = 0;
    return std::frexp(weight, &e) == 0.5;
}

/// s + c += a - b, compensated: a - b = d + e exactly (TwoSum), then two_add(s, c, d). The
/// difference does not depend on s, so a running sum chains through one addition per step.
inline void add_diff(double& s, double& c, double a, double b) {
    const double d = a - b;
    const double z = d - a;
    const double e = (a - (d - z)) - (b + z);
    two_add(s, c, d);
    c += e;
}

/// The sweep. `Src` gives the C channel values of an input voxel: `Src::row(idx)` points
/// at row idx, `Src::unit()` says whether rows have unit strides, and
/// `Src::values<Unit>(row, x, v)` writes the channels of voxel x to v[0..C).
/// `Sink::operator()(stats, idx, sums, cstride, inv_volume)` receives the window sums of
/// row idx (planar: channel c at sums + c * cstride), and `Sink::check<Unit>(stats, row,
/// len)` sees each input voxel once, when the sweep first loads it (`row` as Src::row gives
/// it, `len` voxels of a row or of a contiguous run of rows, all in one index of the image's
/// first axis). With `Src::compensated`, the
/// running sums of the last channel carry a compensation term; the others are summed
/// exactly as without it.
///
/// Each active axis before the last keeps a running sum over its window: a buffer of the
/// sub-volume after it (one plane per channel, then the compensation), moved from one
/// index to the next by adding a slab and dropping one. Rows (axis 2) go through in groups
/// of `lanes`; along the last axis a group is transposed, summed with one row per lane
/// (independent chains that vectorise, where one row is a serial chain), and transposed
/// back.
template <std::size_t C, class Src, class Sink>
class Sweep {
public:
    using Stats = typename Sink::Stats;
    static constexpr bool Comp = Src::compensated;
    static constexpr std::size_t planes = C + (Comp ? 1 : 0);
    using Index = std::array<std::size_t, 3>;
    using Start = std::vector<std::pair<std::size_t, double>>;

    // How a running buffer moves to its current index: restart from a whole window, or
    // add slab `add` and drop slab `sub`. Slabs in [fresh, fresh_end) of the input are
    // read for the first time in this block: the sink checks them.
    struct Step {
        const Start* start = nullptr;
        std::size_t add = 0, sub = 0;
        std::size_t fresh = 0, fresh_end = 0;
    };

    // Per-thread scratch, allocated before the parallel region.
    struct Scratch {
        std::array<std::vector<double>, 3> level;  // planes x inner[d], for active axes
        std::array<std::size_t, 3> checked{};        // slabs of the input checked so far, per axis
        // lanes rows x C channels x nx: a group's sums over axes 0..2, then, channel by
        // channel as they are transposed, over the whole window.
        std::vector<double> rows;
        std::vector<double> across, across_sums;  // nx x lanes: one channel, lanes = rows

        void reserve(const Geometry& g) {
            for (int d = 0; d < 3; ++d)
                if (g.plan[d].active) level[d].assign(planes * g.inner[d], 0.0);
            const std::size_t nx = g.n[3];
            rows.assign(lanes * C * nx, 0.0);
            if (g.plan[3].active) {
                across.assign(nx * lanes, 0.0);
                across_sums.assign(nx * lanes, 0.0);
            }
        }
    };

    Sweep(const Geometry& g, const Src& src, const Sink& sink) : g_(g), src_(src), sink_(sink) {}

    Stats run(int threads) const {
        std::vector<Stats> block_stats(g_.nblocks);
        int nt = threads > 0 ? threads : default_threads();
        nt = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(nt), g_.nblocks));
        if (nt < 1) nt = 1;
        // Allocate before the parallel region so that bad_alloc reaches the caller.
        std::vector<Scratch> scratch(static_cast<std::size_t>(nt));
        for (auto& s : scratch) s.reserve(g_);
        const auto nb = static_cast<std::ptrdiff_t>(g_.nblocks);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
        for (std::ptrdiff_t b = 0; b < nb; ++b) {
#ifdef _OPENMP
            auto& st = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#else
            auto& st = scratch[0];
#endif
            run_block(st, static_cast<std::size_t>(b), block_stats[static_cast<std::size_t>(b)]);
        }
        Stats total;
        for (const auto& s : block_stats) total.merge(s);
        return total;
    }

private:
    const Geometry& g_;
    const Src& src_;
    const Sink& sink_;

    void run_block(Scratch& st, std::size_t b, Stats& stats) const {
        Index idx{0, 0, 0};
        if (g_.par_axis < 0) {
            level(st, 0, idx, 0, 1, stats);
            return;
        }
        const std::size_t begin = b * g_.block;
        const std::size_t end = std::min(begin + g_.block, g_.n[g_.par_axis]);
        level(st, g_.par_axis, idx, begin, end, stats);
    }

    // The step that brings axis d's running buffer to index i of a run over [begin, end).
    // Where the level reads the input, each slab of [begin, end) is checked once: in the
    // window the run starts from, or when it enters the window (slabs enter in increasing
    // order; at the far edge the reflection brings back slabs already seen).
    Step step_to(Scratch& st, int d, std::size_t i, std::size_t begin, std::size_t end) const {
        const AxisPlan& p = g_.plan[d];
        const bool reads_input = g_.prev_active[d] < 0;
        if (i == begin) {
            // Only the parallel axis starts elsewhere than 0, at a block boundary.
            const Start& start = begin == 0 ? p.start0 : g_.block_start[begin / g_.block];
            st.checked[d] = begin;  // one past the last slab checked
            for (const auto& entry : start)
                if (entry.first < end) st.checked[d] = std::max(st.checked[d], entry.first + 1);
            return Step{&start, 0, 0, reads_input ? begin : 0, reads_input ? end : 0};
        }
        Step s{nullptr, p.add[i - 1], p.sub[i - 1], 0, 0};
        if (reads_input && s.add >= st.checked[d] && s.add < end) {
            s.fresh = s.add;
            s.fresh_end = s.add + 1;
            st.checked[d] = s.add + 1;
        }
        return s;
    }

    void level(Scratch& st, int d, Index& idx, std::size_t begin, std::size_t end, Stats& stats) const {
        if (d == 2) {
            rows(st, idx, begin, end, stats);
            return;
        }
        for (std::size_t i = begin; i < end; ++i) {
            idx[d] = i;
            if (g_.plan[d].active) apply(st, d, idx, step_to(st, d, i, begin, end), stats);
            level(st, d + 1, idx, 0, g_.n[d + 1], stats);
        }
    }

    // Moves level d's buffer (all of the sub-volume after axis d) by one step.
    void apply(Scratch& st, int d, const Index& idx, const Step& s, Stats& stats) const {
        const std::size_t len = g_.inner[d];
        double* buf = st.level[d].data();
        if (s.start != nullptr) {
            std::fill(buf, buf + planes * len, 0.0);
            for (const auto& [j, weight] : *s.start)
                add_slabs(st, d, idx, j, j, weight, buf, j >= s.fresh && j < s.fresh_end, stats);
        } else {
            add_slabs(st, d, idx, s.add, s.sub, 0.0, buf, s.fresh_end > s.fresh, stats);
        }
    }

    // weight != 0: buf += weight * slab(a). weight == 0: buf += slab(a) - slab(s). Slabs are
    // indices of axis d in the level before d, or in the input (then, with `fresh`, slab a
    // is checked as it is read).
    void add_slabs(Scratch& st, int d, const Index& idx, std::size_t a, std::size_t s, double weight,
                   double* buf, bool fresh, Stats& stats) const {
        const std::size_t ps = g_.inner[d], len = ps;
        const int p = g_.prev_active[d];
        if (p >= 0) {
            const double* prev = st.level[p].data();
            const std::size_t pps = g_.inner[p];
            const double* pa = prev + g_.linear(idx, p + 1, d, a) * ps;
            const double* pr = prev + g_.linear(idx, p + 1, d, s) * ps;
            // Channel by channel: loops over one plane each vectorise.
            for (std::size_t c = 0; c < C; ++c) {
                if (Comp && c + 1 == C)
                    comp_line(buf + c * ps, buf + C * ps, pa + c * pps, pa + C * pps, pr + c * pps, pr + C * pps,
                              len, weight);
                else
                    plain_line(buf + c * ps, pa + c * pps, pr + c * pps, len, weight);
            }
            return;
        }
        // Straight from the input, row by row over the axes after d, or in one run where
        // the input holds them contiguously (short rows cost more in overhead than in sums).
        const std::size_t nx = g_.n[3];
        Index ra = idx, rs = idx;
        ra[d] = a;
        rs[d] = s;
        for (int e = d + 1; e < 3; ++e) ra[e] = rs[e] = 0;
        const std::size_t run = src_.contiguous_after(d) ? len : nx;
        const std::size_t ahead = rows_ahead(nx * sizeof(typename Src::value_type));
        for (std::size_t done = 0; done < len; done += run) {
            // The hardware prefetchers keep up with one long run, not with rows of several
            // streams interleaved with the rest of the sweep.
            if (run == nx && weight == 0.0 && ra[2] + ahead < g_.n[2]) {
                src_.prefetch(Index{ra[0], ra[1], ra[2] + ahead});
                src_.prefetch(Index{rs[0], rs[1], rs[2] + ahead});
            }
            if (src_.unit()) {
                input_line<true>(buf + done, ps, src_.row(ra), src_.row(rs), run, weight);
                if (fresh) sink_.template check<true>(stats, src_.row(ra), run);
            } else {
                input_line<false>(buf + done, ps, src_.row(ra), src_.row(rs), run, weight);
                if (fresh) sink_.template check<false>(stats, src_.row(ra), run);
            }
            for (int e = 2; e > d; --e) {  // odometer over the axes after d
                if (++ra[e] < g_.n[e]) {
                    rs[e] = ra[e];
                    break;
                }
                ra[e] = rs[e] = 0;
            }
        }
    }

    template <bool Unit>
    void input_line(double* buf, std::size_t ps, const typename Src::Row& ra, const typename Src::Row& rs,
                    std::size_t len, double weight) const {
        if (weight != 0.0) {
            if (exact_product(weight)) weighted_line<Unit, true>(buf, ps, ra, len, weight);
            else weighted_line<Unit, false>(buf, ps, ra, len, weight);
            return;
        }
        for (std::size_t x = 0; x < len; ++x) {
            double va[C], vs[C];
            src_.template values<Unit>(ra, x, va);
            src_.template values<Unit>(rs, x, vs);
            add_step(buf, ps, x, va, vs);
        }
    }

    // buf += weight * row; with `Exact`, weight * v rounds for no v.
    template <bool Unit, bool Exact>
    void weighted_line(double* buf, std::size_t ps, const typename Src::Row& ra, std::size_t len,
                       double weight) const {
        for (std::size_t x = 0; x < len; ++x) {
            double v[C];
            src_.template values<Unit>(ra, x, v);
            for (std::size_t c = 0; c < C; ++c) {
                const double p = weight * v[c];
                if (Comp && c + 1 == C) {
                    two_add(buf[c * ps + x], buf[C * ps + x], p);
                    if constexpr (!Exact) buf[C * ps + x] += std::fma(weight, v[c], -p);
                } else {
                    buf[c * ps + x] += p;
                }
            }
        }
    }

    static void plain_line(double* __restrict dst, const double* __restrict a, const double* __restrict s,
                           std::size_t len, double weight) {
        if (weight != 0.0) {
            for (std::size_t e = 0; e < len; ++e) dst[e] += weight * a[e];
        } else {
            for (std::size_t e = 0; e < len; ++e) dst[e] += a[e] - s[e];
        }
    }

    // plain_line for the compensated channel of a level: its inputs are value + compensation.
    static void comp_line(double* __restrict dst, double* __restrict dstc, const double* __restrict a,
                          const double* __restrict ac, const double* __restrict s, const double* __restrict sc,
                          std::size_t len, double weight) {
        if (weight != 0.0 && exact_product(weight)) {
            for (std::size_t e = 0; e < len; ++e) two_add(dst[e], dstc[e], weight * (a[e] + ac[e]));
        } else if (weight != 0.0) {
            for (std::size_t e = 0; e < len; ++e) {
                const double v = a[e] + ac[e];
                const double x = weight * v;
                two_add(dst[e], dstc[e], x);
                dstc[e] += std::fma(weight, v, -x);  // the product's error
            }
        } else {
            for (std::size_t e = 0; e < len; ++e) {
                add_diff(dst[e], dstc[e], a[e] + ac[e], s[e] + sc[e]);
            }
        }
    }

    // A level passes on its sums rounded to one double: the compensation has done its
    // work (no residue of what left the window), and the next level compensates its own.
    static void level_values(const double* p, std::size_t ps, std::size_t e, double* v) {
        for (std::size_t c = 0; c < C; ++c) v[c] = p[c * ps + e];
        if constexpr (Comp) v[C - 1] += p[C * ps + e];
    }

    static void add_step(double* buf, std::size_t ps, std::size_t e, const double* va, const double* vs) {
        for (std::size_t c = 0; c < C; ++c) {
            if (Comp && c + 1 == C) {
                add_diff(buf[c * ps + e], buf[C * ps + e], va[c], vs[c]);
            } else {
                buf[c * ps + e] += va[c] - vs[c];
            }
        }
    }

    // Rows [begin, end) of axis 2: their sums over axes 0..2, then over the last axis
    // (`lanes` rows at a time), then the sink.
    void rows(Scratch& st, Index& idx, std::size_t begin, std::size_t end, Stats& stats) const {
        const std::size_t nx = g_.n[3];
        if (!g_.plan[3].active) {
            for (std::size_t y = begin; y < end; ++y) {
                idx[2] = y;
                const Sums r = row_sums(st, idx, y, begin, end, st.rows.data(), stats);
                sink_(stats, idx, r.p, r.cs, g_.inv_volume);
            }
            return;
        }
        const std::size_t stride = C * nx;  // from one row of the group to the next
        const AxisPlan& py = g_.plan[2];
        const int q = g_.prev_active[2];
        for (std::size_t g0 = begin; g0 < end; g0 += lanes) {
            const std::size_t live = std::min(lanes, end - g0);
            if (!Comp && py.active && q >= 0 && live == lanes && g0 != begin) {
                // The common case: the running sums over axis 2 go straight into the lanes.
                // (Compensated sums would chain four TwoSums per element there: slower than
                // row by row.)
                for (std::size_t c = 0; c < C; ++c) {
                    step_lanes(st, idx, g0, c, st.across.data());
                    across_plain(st.across.data(), st.across_sums.data());
                    from_lanes(st.across_sums.data(), st.rows.data() + c * nx, stride, nx);
                }
            } else {
                for (std::size_t l = 0; l < live; ++l) {
                    idx[2] = g0 + l;
                    double* row = st.rows.data() + l * stride;
                    const Sums r = row_sums(st, idx, g0 + l, begin, end, row, stats);
                    if (r.p != row) copy_sums(r, row, nx);
                }
                // Rows past `live` hold stale finite or NaN values: their lanes are summed
                // alongside but never read.
                for (std::size_t c = 0; c < C; ++c) {
                    to_lanes(st.rows.data() + c * nx, stride, st.across.data(), nx);
                    if (Comp && c + 1 == C) across_comp(st.across.data(), st.across_sums.data());
                    else across_plain(st.across.data(), st.across_sums.data());
                    from_lanes(st.across_sums.data(), st.rows.data() + c * nx, stride, nx);
                }
            }
            for (std::size_t l = 0; l < live; ++l) {
                idx[2] = g0 + l;
                sink_(stats, idx, st.rows.data() + l * stride, nx, g_.inv_volume);
            }
        }
    }

    // A row's channels, c at p + c * cs.
    struct Sums {
        const double* p;
        std::size_t cs;
    };

    // The sums of row y over axes 0..2 (rows [begin, end) in this run): where they are, or
    // in `row` (C planes of nx) when they must be read from the input or rounded from a
    // compensated level.
    Sums row_sums(Scratch& st, const Index& idx, std::size_t y, std::size_t begin, std::size_t end, double* row,
                  Stats& stats) const {
        const std::size_t nx = g_.n[3];
        const int q = g_.prev_active[2];
        Sums r{row, nx};
        if (g_.plan[2].active) {
            apply(st, 2, idx, step_to(st, 2, y, begin, end), stats);
            r = {st.level[2].data(), nx};
        } else if (q >= 0) {
            r = {st.level[q].data() + g_.linear(idx, q + 1, 2, y) * nx, g_.inner[q]};
        } else if (src_.unit()) {
            input_row<true>(idx, row, nx);
            sink_.template check<true>(stats, src_.row(idx), nx);
        } else {
            input_row<false>(idx, row, nx);
            sink_.template check<false>(stats, src_.row(idx), nx);
        }
        if (Comp && r.p != row) {
            copy_sums(r, row, nx);
            r = {row, nx};
        }
        return r;
    }

    // Copies the channels of r to row (C planes of nx), the compensated one rounded.
    static void copy_sums(const Sums& r, double* row, std::size_t nx) {
        for (std::size_t x = 0; x < nx; ++x) {
            double v[C];
            level_values(r.p, r.cs, x, v);
            for (std::size_t c = 0; c < C; ++c) row[c * nx + x] = v[c];
        }
    }

    // The running sums over axis 2 of rows g0 .. g0 + lanes - 1, none of them the first of
    // its run, for plain channel c, written straight into the lanes: t[x * lanes + l] is
    // the sum of row g0 + l. One pass where stepping, copying and transposing each row
    // take three.
    NOISELAB_NOINLINE void step_lanes(Scratch& st, const Index& idx, std::size_t g0, std::size_t c,
                                      double* __restrict t) const {
        const AxisPlan& py = g_.plan[2];
        const int q = g_.prev_active[2];
        const std::size_t nx = g_.n[3];
        const double* prev = st.level[q].data() + c * g_.inner[q];
        const double* a[lanes];
        const double* s[lanes];
        for (std::size_t l = 0; l < lanes; ++l) {
            const std::size_t y = g0 + l;
            a[l] = prev + g_.linear(idx, q + 1, 2, py.add[y - 1]) * nx;
            s[l] = prev + g_.linear(idx, q + 1, 2, py.sub[y - 1]) * nx;
        }
        double* r = st.level[2].data() + c * nx;
        for (std::size_t x = 0; x < nx; ++x) {
            double v = r[x];
            for (std::size_t l = 0; l < lanes; ++l) {
                v += a[l][x] - s[l][x];
                t[x * lanes + l] = v;
            }
            r[x] = v;
        }
    }

    template <bool Unit>
    void input_row(const Index& idx, double* row, std::size_t nx) const {
        const auto r = src_.row(idx);
        for (std::size_t x = 0; x < nx; ++x) {
            double v[C];
            src_.template values<Unit>(r, x, v);
            for (std::size_t c = 0; c < C; ++c) row[c * nx + x] = v[c];
        }
    }

    // rows (lanes rows of nx, `stride` apart) -> t[x * lanes + l]
    static void to_lanes(const double* __restrict rows, std::size_t stride, double* __restrict t, std::size_t nx) {
        for (std::size_t x = 0; x < nx; ++x)
            for (std::size_t l = 0; l < lanes; ++l) t[x * lanes + l] = rows[l * stride + x];
    }

    static void from_lanes(const double* __restrict t, double* __restrict rows, std::size_t stride, std::size_t nx) {
        for (std::size_t x = 0; x < nx; ++x)
            for (std::size_t l = 0; l < lanes; ++l) rows[l * stride + x] = t[x * lanes + l];
    }

    // Window sums along the last axis, one row per lane: o[i] = sum of t over the window of i.
    NOISELAB_NOINLINE void across_plain(const double* __restrict t, double* __restrict o) const {
        const AxisPlan& px = g_.plan[3];
        double acc[lanes] = {};
        for (const auto& [j, weight] : px.start0)
            for (std::size_t l = 0; l < lanes; ++l) acc[l] += weight * t[j * lanes + l];
        for (std::size_t l = 0; l < lanes; ++l) o[l] = acc[l];
        for (std::size_t i = 0; i + 1 < px.n; ++i) {
            const double* a = t + px.add[i] * lanes;
            const double* s = t + px.sub[i] * lanes;
            double* oi = o + (i + 1) * lanes;
            for (std::size_t l = 0; l < lanes; ++l) {
                acc[l] += a[l] - s[l];
                oi[l] = acc[l];
            }
        }
    }

    // across_plain with compensation; each sum is rounded once at the end.
    NOISELAB_NOINLINE void across_comp(const double* __restrict t, double* __restrict o) const {
        const AxisPlan& px = g_.plan[3];
        double acc[lanes] = {}, comp[lanes] = {};
        for (const auto& [j, weight] : px.start0) {
            const bool exact = exact_product(weight);
            for (std::size_t l = 0; l < lanes; ++l) {
                const double x = weight * t[j * lanes + l];
                two_add(acc[l], comp[l], x);
                if (!exact) comp[l] += std::fma(weight, t[j * lanes + l], -x);  // the product's error
            }
        }
        for (std::size_t l = 0; l < lanes; ++l) o[l] = acc[l] + comp[l];
        for (std::size_t i = 0; i + 1 < px.n; ++i) {
            const double* a = t + px.add[i] * lanes;
            const double* s = t + px.sub[i] * lanes;
            double* oi = o + (i + 1) * lanes;
            for (std::size_t l = 0; l < lanes; ++l) {
                add_diff(acc[l], comp[l], a[l], s[l]);
                oi[l] = acc[l] + comp[l];
            }
        }
    }
};

/// One affine map per index of the image's first axis (a slice), `scale * x + offset`: how
/// stored values become magnitudes (DICOM's rescale slope and intercept) and back.
struct SliceAffine {
    struct Coefficients {
        double scale, offset;
    };
    const double* scale = nullptr;
    const double* offset = nullptr;
    std::ptrdiff_t scale_step = 0, offset_step = 0;  // from one slice to the next (0: one for all)
    int axis = 0;  // the slice axis among the row indices 0..2 of a Padded view

    Coefficients at(const std::array<std::size_t, 3>& i) const {
        const auto s = static_cast<std::ptrdiff_t>(axis < 3 ? i[static_cast<std::size_t>(axis)] : 0);
        return {scale[s * scale_step], offset[s * offset_step]};
    }
};

/// The magnitude of stored value v: double(v), or with `Rescaled` double(v) * scale + offset
/// in two roundings, as numpy's `m *= scale; m += offset` (no fused multiply-add).
template <bool Rescaled, class T>
inline double magnitude(T v, double scale, double offset) {
    double m = static_cast<double>(v);
    if constexpr (Rescaled) {
        m *= scale;
        m += offset;
    } else {
        (void)scale, (void)offset;
    }
    return m;
}

/// M^2 (and M^4) of the input, optionally with a mask count channel first. With `Rescaled`
/// the input holds stored values, M their magnitude (see magnitude()) per `affine`.
template <class T, bool Masked, bool Fourth, bool Rescaled = false>
struct PowerSource {
    static constexpr std::size_t channels = (Masked ? 1 : 0) + 1 + (Fourth ? 1 : 0);
    // M^4 spans (A/sigma)^4: after bright tissue, plain running sums would keep enough
    // rounding residue to swamp the small variance of the background that follows.
    static constexpr bool compensated = Fourth;
    Padded<const T> in;
    Padded<const std::uint8_t> mask;
    SliceAffine affine{};

    struct Row {
        const T* p;
        const std::uint8_t* m;
        double scale, offset;  // the row's affine (Rescaled only)
    };

    using value_type = T;

    Row row(const std::array<std::size_t, 3>& i) const {
        Row r{in.row(i), Masked ? mask.row(i) : nullptr, 1.0, 0.0};
        if constexpr (Rescaled) {
            const auto c = affine.at(i);
            r.scale = c.scale;
            r.offset = c.offset;
        }
        return r;
    }

    void prefetch(const std::array<std::size_t, 3>& i) const {
        if (in.xstride() == 1) prefetch_row(in.row(i), in.shape[3] * sizeof(T), false);
    }
    bool unit() const { return in.xstride() == 1 && (!Masked || mask.xstride() == 1); }
    /// Whether the sub-volume after axis d is one contiguous run (C order, unit strides).
    bool contiguous_after(int d) const {
        bool c = unit();
        for (int e = d + 1; e < 3; ++e) {
            c = c && in.strides[e] == in.strides[e + 1] * static_cast<std::ptrdiff_t>(in.shape[e + 1]);
            if (Masked)
                c = c && mask.strides[e] == mask.strides[e + 1] * static_cast<std::ptrdiff_t>(mask.shape[e + 1]);
        }
        return c;
    }

    template <bool Unit>
    void values(const Row& r, std::size_t x, double* v) const {
        const auto xi = static_cast<std::ptrdiff_t>(x);
        const double a = magnitude<Rescaled>(r.p[Unit ? xi : xi * in.xstride()], r.scale, r.offset);
        // Masked-out values may be NaN: select, never multiply by the mask.
        const bool inside = !Masked || r.m[Unit ? xi : xi * mask.xstride()] != 0;
        const double a2 = inside ? a * a : 0.0;
        if constexpr (Masked) v[0] = inside ? 1.0 : 0.0;
        v[Masked ? 1 : 0] = a2;
        if constexpr (Fourth) v[Masked ? 2 : 1] = a2 * a2;
    }
};

struct NoStats {
    void merge(const NoStats&) {}
};

}  // namespace detail

/// What box_moments() saw of the input voxels inside the mask: a caller that needs finite,
/// non-negative magnitudes learns it from the sweep instead of another pass.
struct BoxReport {
    std::size_t nonfinite = 0;  ///< NaN or infinite
    std::size_t negative = 0;   ///< below 0

    void merge(const BoxReport& o) {
        nonfinite += o.nonfinite;
        negative += o.negative;
    }
};

namespace detail {

/// Writes the box means of M^2 (and M^4) to double views; with `Counted`, also each
/// window's count of in-mask voxels, and the report of the input voxels.
template <bool Masked, bool Fourth, bool Counted = false>
struct MeanSink {
    static_assert(Masked || !Counted, "a count needs a mask");
    using Stats = std::conditional_t<Counted, BoxReport, NoStats>;
    Padded<double> m2, m4;
    Padded<std::uint32_t> count;

    // Input voxels as the sweep first loads them (see CorrectSink::check): a simple loop
    // that vectorises, with counters wide enough for any run.
    template <bool Unit, class Row>
    void check(Stats& st, const Row& r, std::size_t len) const {
        if constexpr (Counted) {
            using T = std::remove_const_t<std::remove_pointer_t<decltype(r.p)>>;
            const T* p = r.p;
            const std::uint8_t* m = r.m;
            const std::ptrdiff_t sx = Unit ? 1 : in_xstride;
            const std::ptrdiff_t mx = Unit ? 1 : mask_xstride;
            std::size_t cf = 0, cneg = 0;
            for (std::size_t x = 0; x < len; ++x) {
                const auto xi = static_cast<std::ptrdiff_t>(x);
                const T v = p[xi * sx];
                const bool inside = m[xi * mx] != 0;
                cf += inside & !(v - v == T(0));  // NaN and inf both fail
                cneg += inside & (v < T(0));
            }
            st.nonfinite += cf;
            st.negative += cneg;
        } else {
            (void)st, (void)r, (void)len;
        }
    }

    void operator()(Stats&, const std::array<std::size_t, 3>& i, const double* sums,
                    std::size_t cs, double inv) const {
        const std::size_t nx = m2.shape[3];
        double* o2 = m2.row(i);
        double* o4 = Fourth ? m4.row(i) : nullptr;
        const double* n = sums;
        const double* s2 = sums + (Masked ? cs : 0);
        for (std::size_t x = 0; x < nx; ++x) {
            // A window holding no in-mask voxel has no mean: 0 by convention.
            const double scale = Masked ? (n[x] > 0 ? 1.0 / n[x] : 0.0) : inv;
            o2[static_cast<std::ptrdiff_t>(x) * m2.xstride()] = s2[x] * scale;
            if constexpr (Fourth)
                o4[static_cast<std::ptrdiff_t>(x) * m4.xstride()] = s2[cs + x] * scale;
        }
        if constexpr (Counted) {
            // The count channel sums 0s and 1s in double: whole numbers, exact below 2^53.
            std::uint32_t* oc = count.row(i);
            for (std::size_t x = 0; x < nx; ++x)
                oc[static_cast<std::ptrdiff_t>(x) * count.xstride()] = static_cast<std::uint32_t>(n[x]);
        }
    }

    std::ptrdiff_t in_xstride = 1, mask_xstride = 1;  // for check() on strided rows
};

template <class T, class U>
void check_mask(const ArrayView<T>& image, const ArrayView<U>& mask) {
    if (mask.data != nullptr) check_same_shape(image, mask, "mask");
}

}  // namespace detail

/// Options for box_moments().
struct BoxOptions {
    /// Voxels where the mask is 0 do not contribute; means divide by the in-mask count.
    /// Leave data null for no mask. Same shape as the input.
    ArrayView<const std::uint8_t> mask{};
    /// With a mask, and data non-null: receives each window's count of in-mask voxels,
    /// the channel the masked means divide by (a voxel that a window longer than its axis
    /// reflects k times counts k times). Same shape as the input; the window's volume must
    /// be below 2^32.
    ArrayView<std::uint32_t> count{};
    /// Threads; 0 uses OpenMP's default. Results are bit-identical for any value.
    int threads = 0;
};

/// Box means of M^2 and, when `mean_m4.data` is non-null, of M^4, over `window`.
///
/// Matches scipy.ndimage.uniform_filter(M**2, window, mode="reflect") (in double).
/// With `opt.count`, also writes the in-mask counts, and reports the NaN, infinite and
/// negative input voxels inside the mask (the means are then NaN or meaningless
/// around them); otherwise the report is empty.
/// Throws std::invalid_argument for bad ranks, empty axes, window sizes < 1, outputs
/// whose shape differs from the input, or a count without a mask.
template <class T>
BoxReport box_moments(ArrayView<const T> in, const Window& window, ArrayView<double> mean_m2,
                      ArrayView<double> mean_m4 = {}, const BoxOptions& opt = {}) {
    detail::check_view(in, "image");
    detail::check_view(mean_m2, "mean_m2 output");
    detail::check_same_shape(in, mean_m2, "mean_m2 output");
    const bool fourth = mean_m4.data != nullptr;
    if (fourth) detail::check_same_shape(in, mean_m4, "mean_m4 output");
    detail::check_mask(in, opt.mask);
    const bool masked = opt.mask.data != nullptr;
    const bool counted = opt.count.data != nullptr;
    if (counted) {
        if (!masked) throw std::invalid_argument("noiselab: a count output needs a mask");
        detail::check_same_shape(in, opt.count, "count output");
        double volume = 1.0;
        for (std::size_t d = 0; d < in.ndim; ++d) volume *= static_cast<double>(window[d]);
        if (!(volume < 4294967296.0))
            throw std::invalid_argument("noiselab: a count output needs a window of fewer than 2^32 voxels");
    }
    const detail::Geometry g(in, window);
    BoxReport report;
    auto go = [&](auto masked_, auto four, auto count_) {
        constexpr bool M = decltype(masked_)::value, F = decltype(four)::value, K = decltype(count_)::value;
        using Src = detail::PowerSource<T, M, F>;
        using Sink = detail::MeanSink<M, F, K>;
        Src src{detail::Padded<const T>(in), M ? detail::Padded<const std::uint8_t>(opt.mask)
                                                : detail::Padded<const std::uint8_t>()};
        Sink sink{detail::Padded<double>(mean_m2),
                  F ? detail::Padded<double>(mean_m4) : detail::Padded<double>(),
                  K ? detail::Padded<std::uint32_t>(opt.count) : detail::Padded<std::uint32_t>()};
        sink.in_xstride = src.in.xstride();
        sink.mask_xstride = M ? src.mask.xstride() : 0;
        if constexpr (K) report = detail::Sweep<Src::channels, Src, Sink>(g, src, sink).run(opt.threads);
        else detail::Sweep<Src::channels, Src, Sink>(g, src, sink).run(opt.threads);
    };
    using std::false_type, std::true_type;
    if (counted && fourth) go(true_type{}, true_type{}, true_type{});
    else if (counted) go(true_type{}, false_type{}, true_type{});
    else if (masked && fourth) go(true_type{}, true_type{}, false_type{});
    else if (masked) go(true_type{}, false_type{}, false_type{});
    else if (fourth) go(false_type{}, true_type{}, false_type{});
    else go(false_type{}, false_type{}, false_type{});
    return report;
}

}  // namespace noiselab
