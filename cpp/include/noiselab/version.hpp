// The one place the version of mri-noiselab is written: CMake and the Python
// package metadata both read it from here.
#pragma once

#define NOISELAB_VERSION_MAJOR 0
#define NOISELAB_VERSION_MINOR 2
#define NOISELAB_VERSION_PATCH 0
#define NOISELAB_VERSION "0.2.0"
