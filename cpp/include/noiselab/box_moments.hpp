// Sliding-window (box) sums of several moments at once, in one sweep.
//
// Boundary rule: exactly scipy.ndimage.uniform_filter(x, size, mode="reflect").
// The window of output i covers i - floor(w/2) ... i - floor(w/2) + w - 1, and
// an index j outside [0, n) reflects with period 2n ("d c b a | a b c d | d c b a"),
// which also covers windows longer than the axis.
//
// Memory order (see shared KERNEL notes): the slowest windowed axis is walked
// slab by slab with a running sum of slabs in one double buffer; the next axis
// runs a running sum of rows of that buffer, and the last axis a running sum
// along the row. Each input voxel is read from memory about once and the output
// written once, so the whole correction costs a few volume passes, not ten.
//
// Precision: sums run in double. For 16-bit data, M^2 sums are exact. M^4 spans
// (A/sigma)^4, and plain running sums would keep rounding residue from bright tissue in
// the background after it (10% error in the local variance at A/sigma = 2e4), so the
// running sums of M^4 (LMMSE) carry a compensation term (TwoSum); those of M^2 are the
// same as without M^4, so LMMSE with K = 0 equals the moments correction to the bit.
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
    // Along the innermost axis the running sum is a serial chain of additions; four
    // segments with their own start windows give four independent chains.
    static constexpr std::size_t segments = 4;
    std::size_t seg_len = 0;  // 0: one chain only
    std::array<std::vector<std::pair<std::size_t, double>>, segments> seg_start;

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
        if (n >= 64) {
            seg_len = (n + segments - 1) / segments;
            for (std::size_t k = 0; k < segments; ++k) seg_start[k] = window_at(k * seg_len);
        }
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
            // blocks of 8..32 slabs; inactive ones can split at every index.
            block = plan[par_axis].active ? std::clamp<std::size_t>((np + 7) / 8, 8, 32) : 1;
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

/// Per-thread scratch: one running buffer per active outer axis, and row buffers. With
/// compensation each buffer holds the C channels, then the last channel's compensation.
template <std::size_t C, bool Comp>
struct SweepScratch {
    static constexpr std::size_t planes = C + (Comp ? 1 : 0);
    std::array<std::vector<double>, 3> level;
    std::vector<double> ra, rb, sums;

    void reserve(const Geometry& g) {
        for (int d = 0; d < 3; ++d)
            if (g.plan[d].active) level[d].assign(planes * g.inner[d], 0.0);
        ra.assign(C * g.n[3], 0.0);
        if (Comp) rb.assign(C * g.n[3], 0.0);
        sums.assign(C * g.n[3], 0.0);
    }
};

/// The sweep. `Src::load(idx, dst, cstride)` writes the C channel values of the input
/// row idx (planar: channel c at dst + c * cstride); `Src::accumulate(ia, is, weight, dst,
/// cstride)` adds weight * row ia to dst, or row ia minus row is when weight is 0.
/// `Sink::operator()(stats, idx, sums, cstride, inv_volume)` receives the window sums
/// of that row. With `Src::compensated`, the running sums of the last channel carry a
/// compensation term; the others are summed exactly as without it.
template <std::size_t C, class Src, class Sink>
class Sweep {
public:
    using Stats = typename Sink::Stats;
    static constexpr bool Comp = Src::compensated;
    using Scratch = SweepScratch<C, Comp>;

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
        std::array<std::size_t, 3> idx{0, 0, 0};
        if (g_.par_axis < 0) {
            level(st, 0, idx, 0, 1, stats);
            return;
        }
        const std::size_t begin = b * g_.block;
        const std::size_t end = std::min(begin + g_.block, g_.n[g_.par_axis]);
        level(st, g_.par_axis, idx, begin, end, stats);
    }

    void level(Scratch& st, int d, std::array<std::size_t, 3>& idx, std::size_t begin,
               std::size_t end, Stats& stats) const {
        if (d == 3) {
            final_row(st, idx, stats);
            return;
        }
        const AxisPlan& p = g_.plan[d];
        if (!p.active) {
            for (std::size_t i = begin; i < end; ++i) {
                idx[d] = i;
                level(st, d + 1, idx, 0, g_.n[d + 1], stats);
            }
            return;
        }
        double* buf = st.level[d].data();
        for (std::size_t i = begin; i < end; ++i) {
            if (i == begin) {
                std::fill(st.level[d].begin(), st.level[d].end(), 0.0);
                // Only the parallel axis starts elsewhere than 0, at a block boundary.
                const auto& start = begin == 0 ? p.start0 : g_.block_start[begin / g_.block];
                for (const auto& [j, weight] : start) accumulate(st, d, idx, j, j, weight, buf);
            } else {
                accumulate(st, d, idx, p.add[i - 1], p.sub[i - 1], 0.0, buf);
            }
            idx[d] = i;
            level(st, d + 1, idx, 0, g_.n[d + 1], stats);
        }
    }

    // weight != 0: buf += weight * slab(a). weight == 0: buf += slab(a) - slab(s).
    void accumulate(Scratch& st, int d, const std::array<std::size_t, 3>& idx,
                    std::size_t a, std::size_t s, double weight, double* buf) const {
        const std::size_t len = g_.inner[d];
        const int p = g_.prev_active[d];
        if (p >= 0) {
            const double* prev = st.level[p].data();
            const std::size_t plen = g_.inner[p];
            const std::size_t oa = g_.linear(idx, p + 1, d, a) * len;
            const std::size_t os = g_.linear(idx, p + 1, d, s) * len;
            for (std::size_t c = 0; c < C; ++c) {
                if (Comp && c + 1 == C) {
                    const double* pc = prev + C * plen;  // the compensation of the last channel
                    add_line_comp(buf + c * len, buf + C * len, prev + c * plen + oa, pc + oa, prev + c * plen + os,
                                  pc + os, len, weight);
                } else {
                    add_line(buf + c * len, prev + c * plen + oa, prev + c * plen + os, len, weight);
                }
            }
            return;
        }
        // Straight from the input, row by row over the axes after d.
        const std::size_t nx = g_.n[3];
        std::array<std::size_t, 3> ra = idx, rs = idx;
        ra[d] = a;
        rs[d] = s;
        for (int e = d + 1; e < 3; ++e) ra[e] = rs[e] = 0;
        for (std::size_t row = 0; row < len / nx; ++row) {
            if constexpr (Comp) {
                src_.load(ra, st.ra.data(), nx);
                if (weight == 0.0) src_.load(rs, st.rb.data(), nx);
                for (std::size_t c = 0; c + 1 < C; ++c)
                    add_line(buf + c * len + row * nx, st.ra.data() + c * nx, st.rb.data() + c * nx, nx, weight);
                add_line_comp(buf + (C - 1) * len + row * nx, buf + C * len + row * nx, st.ra.data() + (C - 1) * nx,
                              nullptr, st.rb.data() + (C - 1) * nx, nullptr, nx, weight);
            } else {
                src_.accumulate(ra, rs, weight, buf + row * nx, len);
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

    static void add_line(double* __restrict dst, const double* __restrict a,
                         const double* __restrict s, std::size_t len, double weight) {
        if (weight != 0.0) {
            for (std::size_t e = 0; e < len; ++e) dst[e] += weight * a[e];
        } else {
            for (std::size_t e = 0; e < len; ++e) dst[e] += a[e] - s[e];
        }
    }

    // add_line with compensation: (dst, dstc) += weight * (a, ac), or (a, ac) - (s, sc).
    // Null ac/sc: inputs straight from the image, with nothing to carry.
    static void add_line_comp(double* dst, double* dstc, const double* a, const double* ac, const double* s,
                              const double* sc, std::size_t len, double weight) {
        for (std::size_t e = 0; e < len; ++e) {
            if (weight != 0.0) {
                const double x = weight * a[e];
                two_add(dst[e], dstc[e], x);
                dstc[e] += std::fma(weight, a[e], -x) + (ac ? weight * ac[e] : 0.0);
            } else {
                two_add(dst[e], dstc[e], a[e]);
                two_add(dst[e], dstc[e], -s[e]);
                if (ac) dstc[e] += ac[e] - sc[e];
            }
        }
    }

    // x_sums with compensation; o[i] is the rounded sum of value and compensation.
    static void x_sums_comp(const AxisPlan& px, const double* r, const double* rc, double* o) {
        const std::size_t nx = px.n;
        double acc = 0.0, comp = 0.0;
        for (const auto& [j, weight] : px.start0) {
            two_add(acc, comp, weight * r[j]);
            comp += std::fma(weight, r[j], -(weight * r[j])) + (rc ? weight * rc[j] : 0.0);
        }
        o[0] = acc + comp;
        for (std::size_t i = 0; i + 1 < nx; ++i) {
            two_add(acc, comp, r[px.add[i]]);
            two_add(acc, comp, -r[px.sub[i]]);
            if (rc) comp += rc[px.add[i]] - rc[px.sub[i]];
            o[i + 1] = acc + comp;
        }
    }

    // Window sums along the last axis: o[i] = sum of r over the window of output i.
    static void x_sums(const AxisPlan& px, const double* r, double* o) {
        const std::size_t nx = px.n;
        auto start = [&](const std::vector<std::pair<std::size_t, double>>& win) {
            double acc = 0.0;
            for (const auto& [j, weight] : win) acc += weight * r[j];
            return acc;
        };
        if (px.seg_len == 0) {
            double acc = start(px.start0);
            o[0] = acc;
            for (std::size_t i = 0; i + 1 < nx; ++i) {
                acc += r[px.add[i]] - r[px.sub[i]];
                o[i + 1] = acc;
            }
            return;
        }
        constexpr std::size_t K = AxisPlan::segments;
        const std::size_t L = px.seg_len;
        double acc[K];
        for (std::size_t k = 0; k < K; ++k) {
            acc[k] = start(px.seg_start[k]);
            o[k * L] = acc[k];
        }
        const std::size_t last = nx - (K - 1) * L;  // the last segment may be shorter
        std::size_t t = 0;
        for (; t + 1 < last; ++t)
            for (std::size_t k = 0; k < K; ++k) {
                const std::size_t i = k * L + t;
                acc[k] += r[px.add[i]] - r[px.sub[i]];
                o[i + 1] = acc[k];
            }
        for (std::size_t k = 0; k + 1 < K; ++k)
            for (std::size_t u = t; u + 1 < L; ++u) {
                const std::size_t i = k * L + u;
                acc[k] += r[px.add[i]] - r[px.sub[i]];
                o[i + 1] = acc[k];
            }
    }

    void final_row(Scratch& st, const std::array<std::size_t, 3>& idx, Stats& stats) const {
        const std::size_t nx = g_.n[3];
        const int q = g_.prev_active[3];
        const double* row;
        const double* rowc = nullptr;  // the last channel's compensation, when there is one
        std::size_t cs;
        if (q < 0) {
            src_.load(idx, st.ra.data(), nx);
            row = st.ra.data();
            cs = nx;
        } else {
            row = st.level[q].data() + g_.linear(idx, q + 1, 2, idx[2]) * nx;
            cs = g_.inner[q];
            if (Comp) rowc = row + C * cs;
        }
        const AxisPlan& px = g_.plan[3];
        double* out = st.sums.data();
        if (px.active) {
            for (std::size_t c = 0; c < C; ++c) {
                if (Comp && c + 1 == C) x_sums_comp(px, row + c * cs, rowc, out + c * nx);
                else x_sums(px, row + c * cs, out + c * nx);
            }
            row = out;
            cs = nx;
        } else if (rowc != nullptr) {
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t x = 0; x < nx; ++x)
                    out[c * nx + x] = row[c * cs + x] + (c + 1 == C ? rowc[x] : 0.0);
            row = out;
            cs = nx;
        }
        sink_(stats, idx, row, cs, g_.inv_volume);
    }
};

/// Loads M^2 (and M^4) of an input row, optionally with a mask count channel first.
template <class T, bool Masked, bool Fourth>
struct PowerSource {
    static constexpr std::size_t channels = (Masked ? 1 : 0) + 1 + (Fourth ? 1 : 0);
    // M^4 spans (A/sigma)^4: after bright tissue, plain running sums would keep enough
    // rounding residue to swamp the small variance of the background that follows.
    static constexpr bool compensated = Fourth;
    Padded<const T> in;
    Padded<const std::uint8_t> mask;

    void load(const std::array<std::size_t, 3>& i, double* dst, std::size_t cs) const {
        apply(i, i, false, dst, cs, [](double& o, double v, double) { o = v; });
    }

    void accumulate(const std::array<std::size_t, 3>& ia, const std::array<std::size_t, 3>& is,
                    double weight, double* dst, std::size_t cs) const {
        if (weight != 0.0) {
            apply(ia, ia, false, dst, cs, [weight](double& o, double v, double) { o += weight * v; });
        } else {
            apply(ia, is, true, dst, cs, [](double& o, double v, double w) { o += v - w; });
        }
    }

private:
    // Channel values of row ia (and of row is when `two`) combined into dst by
    // op(out, value_a, value_s): one fused pass, no row buffers.
    template <class Op>
    void apply(const std::array<std::size_t, 3>& ia, const std::array<std::size_t, 3>& is, bool two,
               double* dst, std::size_t cs, Op op) const {
        const T* pa = in.row(ia);
        const T* ps = in.row(is);
        const std::ptrdiff_t sx = in.xstride();
        const std::size_t nx = in.shape[3];
        double* c2 = dst + (Masked ? cs : 0);
        double* c4 = c2 + cs;
        if constexpr (!Masked && !Fourth) {
            if (sx == 1) {
                for (std::size_t x = 0; x < nx; ++x) {
                    const double a = static_cast<double>(pa[x]);
                    const double b = two ? static_cast<double>(ps[x]) : 0.0;
                    op(c2[x], a * a, b * b);
                }
                return;
            }
        }
        const std::uint8_t* ma = Masked ? mask.row(ia) : nullptr;
        const std::uint8_t* ms = Masked ? mask.row(is) : nullptr;
        const std::ptrdiff_t mx = Masked ? mask.xstride() : 0;
        for (std::size_t x = 0; x < nx; ++x) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            const double a = static_cast<double>(pa[xi * sx]);
            const double b = two ? static_cast<double>(ps[xi * sx]) : 0.0;
            // Masked-out values may be NaN: select, never multiply by the mask.
            const bool ina = !Masked || ma[xi * mx] != 0;
            const bool ins = two && (!Masked || ms[xi * mx] != 0);
            const double a2 = ina ? a * a : 0.0, b2 = ins ? b * b : 0.0;
            if constexpr (Masked) op(dst[x], ina ? 1.0 : 0.0, ins ? 1.0 : 0.0);
            op(c2[x], a2, b2);
            if constexpr (Fourth) op(c4[x], a2 * a2, b2 * b2);
        }
    }
};

struct NoStats {
    void merge(const NoStats&) {}
};

/// Writes the box means of M^2 (and M^4) to double views.
template <bool Masked, bool Fourth>
struct MeanSink {
    using Stats = NoStats;
    Padded<double> m2, m4;

    void operator()(Stats&, const std::array<std::size_t, 3>& i, const double* sums,
                    std::size_t cs, double inv) const {
        const std::size_t nx = m2.shape[3];
        double* o2 = m2.row(i);
        double* o4 = Fourth ? m4.row(i) : nullptr;
        const double* count = sums;
        const double* s2 = sums + (Masked ? cs : 0);
        for (std::size_t x = 0; x < nx; ++x) {
            // A window holding no in-mask voxel has no mean: 0 by convention.
            const double scale = Masked ? (count[x] > 0 ? 1.0 / count[x] : 0.0) : inv;
            o2[static_cast<std::ptrdiff_t>(x) * m2.xstride()] = s2[x] * scale;
            if constexpr (Fourth)
                o4[static_cast<std::ptrdiff_t>(x) * m4.xstride()] = s2[cs + x] * scale;
        }
    }
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
    /// Threads; 0 uses OpenMP's default. Results are bit-identical for any value.
    int threads = 0;
};

/// Box means of M^2 and, when `mean_m4.data` is non-null, of M^4, over `window`.
///
/// Matches scipy.ndimage.uniform_filter(M**2, window, mode="reflect") (in double).
/// Throws std::invalid_argument for bad ranks, empty axes, window sizes < 1 or
/// outputs whose shape differs from the input.
template <class T>
void box_moments(ArrayView<const T> in, const Window& window, ArrayView<double> mean_m2,
                 ArrayView<double> mean_m4 = {}, const BoxOptions& opt = {}) {
    detail::check_view(in, "image");
    detail::check_view(mean_m2, "mean_m2 output");
    detail::check_same_shape(in, mean_m2, "mean_m2 output");
    const bool fourth = mean_m4.data != nullptr;
    if (fourth) detail::check_same_shape(in, mean_m4, "mean_m4 output");
    detail::check_mask(in, opt.mask);
    const detail::Geometry g(in, window);
    auto go = [&](auto masked, auto four) {
        constexpr bool M = decltype(masked)::value, F = decltype(four)::value;
        using Src = detail::PowerSource<T, M, F>;
        using Sink = detail::MeanSink<M, F>;
        Src src{detail::Padded<const T>(in), M ? detail::Padded<const std::uint8_t>(opt.mask)
                                                : detail::Padded<const std::uint8_t>()};
        Sink sink{detail::Padded<double>(mean_m2),
                  F ? detail::Padded<double>(mean_m4) : detail::Padded<double>()};
        detail::Sweep<Src::channels, Src, Sink>(g, src, sink).run(opt.threads);
    };
    using std::false_type, std::true_type;
    const bool masked = opt.mask.data != nullptr;
    if (masked && fourth) go(true_type{}, true_type{});
    else if (masked) go(true_type{}, false_type{});
    else if (fourth) go(false_type{}, true_type{});
    else go(false_type{}, false_type{});
}

}  // namespace noiselab
