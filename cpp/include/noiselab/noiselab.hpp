// mri-noiselab C++ core: noise level (sigma) estimation and Rician bias correction
// of MRI magnitude images. Header-only; OpenMP when available. No Python.
#pragma once

#include "noiselab/background.hpp"
#include "noiselab/box_moments.hpp"
#include "noiselab/correct.hpp"
#include "noiselab/sigma.hpp"
#include "noiselab/version.hpp"
#include "noiselab/view.hpp"
