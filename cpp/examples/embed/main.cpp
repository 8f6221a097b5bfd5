// Embedding the noiselab core: estimate sigma from a background box of a synthetic
// Rician image, then correct the image, on memory this program owns.
//
// The image: 256 x 256, a flat square of amplitude A = 4 (rows and columns 64..191)
// on a zero background, complex Gaussian noise of sigma = 2 (SNR 2, where the raw
// magnitude is biased up by 14%). Prints one line of key=value per element type;
// tests/run_all.sh checks the numbers against that truth.
#include <noiselab/noiselab.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

constexpr std::size_t rows = 256, cols = 256;
constexpr std::size_t flat_lo = 64, flat_hi = 192;  // the flat square is [flat_lo, flat_hi)
constexpr std::size_t background_rows = 64;         // rows 0..63 hold no signal
constexpr double amplitude = 4.0, sigma_true = 2.0;
constexpr std::size_t window = 9;

template <class T>
void run(const char* type) {
    std::mt19937_64 gen(20261125);
    std::normal_distribution<double> noise(0.0, sigma_true);
    std::vector<T> image(rows * cols);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const bool flat = r >= flat_lo && r < flat_hi && c >= flat_lo && c < flat_hi;
            const double re = (flat ? amplitude : 0.0) + noise(gen), im = noise(gen);
            image[r * cols + c] = static_cast<T>(std::hypot(re, im));
        }

    // The background box is a view into the image itself: pointer, shape, strides (in elements).
    noiselab::ArrayView<const T> box;
    box.data = image.data();
    box.ndim = 2;
    box.shape = {background_rows, cols};
    box.strides = {static_cast<std::ptrdiff_t>(cols), 1};
    const noiselab::SigmaEstimate est = noiselab::estimate_sigma(box, noiselab::SigmaMethod::mle);

    std::vector<T> out(image.size());
    // A mutable view is a valid input; the shape may also be known only at run time.
    const auto in_view = noiselab::make_view(image.data(), {rows, cols});
    const std::array<std::size_t, 2> shape{rows, cols};
    const auto out_view = noiselab::make_view(out.data(), shape);
    noiselab::CorrectionOptions opt;  // moments, one coil, no mask, all threads
    const noiselab::CorrectionReport report =
        noiselab::correct(in_view, out_view, est.sigma, noiselab::Window{window, window}, opt);

    // Mean over the flat square, away from its edge by half a window so that no box straddles it.
    double raw = 0.0, corrected = 0.0;
    std::size_t n = 0;
    for (std::size_t r = flat_lo + window / 2; r < flat_hi - window / 2; ++r)
        for (std::size_t c = flat_lo + window / 2; c < flat_hi - window / 2; ++c) {
            raw += static_cast<double>(image[r * cols + c]);
            corrected += static_cast<double>(out[r * cols + c]);
            ++n;
        }

    // Errors are exceptions: an output of the wrong shape is refused before anything is written.
    bool refused = false;
    try {
        noiselab::correct(in_view, noiselab::make_view(out.data(), {rows, cols - 1}), est.sigma,
                          noiselab::Window{window, window}, opt);
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    // So is an output that shares memory with the input: in place would be wrong.
    bool in_place_refused = false;
    try {
        noiselab::correct(in_view, in_view, est.sigma, noiselab::Window{window, window}, opt);
    } catch (const std::invalid_argument&) {
        in_place_refused = true;
    }

    std::printf(
        "%s openmp=%d sigma_true=%g sigma_est=%.6f background_n=%zu amplitude=%g flat_raw=%.6f "
        "flat_corrected=%.6f flat_n=%zu voxels=%zu clamped=%zu bad_shape_refused=%d in_place_refused=%d\n",
        type, noiselab::has_openmp() ? 1 : 0, sigma_true, est.sigma, est.n, amplitude, raw / n,
        corrected / n, n, report.n, report.clamped, refused ? 1 : 0, in_place_refused ? 1 : 0);
}

}  // namespace

int main() {
    try {
        std::printf("noiselab %s\n", NOISELAB_VERSION);
        run<float>("float");
        run<double>("double");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "noiselab_embed: %s\n", e.what());
        return 1;
    }
    return 0;
}
