"""How to clean one DICOM image: the six steps of the DICOM workflow with mri_noiselab.

    python howto/howto_clean_dicom.py [FILE.dcm]

Without FILE a phantom with Rician noise (σ = 20) is generated first. Outputs go
to ./howto_clean_dicom/ (the input file is never modified).
"""

import sys
from pathlib import Path

from mri_noiselab import correct
from mri_noiselab.dicom import (
    Derivation,
    background_sigma,
    derive_datasets,
    example_phantom,
    read_file,
    synthetic_mr_image,
    write_dataset,
)
from mri_noiselab.qc import save_qc
from mri_noiselab.roi import corner_rois, roi_mask

out = Path("howto_clean_dicom")

# 1. Load the DICOM. The stack holds stored values as (slices, rows, cols);
#    magnitude() gives floats where zero signal is zero (a RescaleIntercept is removed).
if len(sys.argv) > 1:
    source = Path(sys.argv[1])
else:
    _, noisy = example_phantom(sigma=20.0, seed=1)
    source = write_dataset(synthetic_mr_image(noisy, BitsStored=12), out / "input" / "phantom.dcm")
stack = read_file(source)
magnitude = stack.magnitude()
print(f"loaded {source.name}: {stack.shape[0]} slice(s) of {stack.shape[1]}x{stack.shape[2]}, dtype {stack.stored.dtype}")

# 2. Background ROI: noise only, no anatomy, no zero padding. The four corner boxes
#    are a quick default; give your own with roi_mask(["0:20,0:20", ...], stack.shape).
mask = roi_mask(corner_rois(stack.shape, 16), stack.shape)
sigma = background_sigma(stack, mask, estimator="mle")
print(f"sigma = {sigma.sigma:.3f} from {sigma.n} background pixels (mean/std {sigma.ratio:.3f}, pure noise {sigma.expected_ratio:.3f})")
for warning in sigma.warnings:
    print("warning:", warning)

# 3. Subtract the noise bias with a local window inside each slice: (1, f, f).
f_size = (1, 5, 5)
corrected = correct(magnitude, sigma, f_size=f_size, method="moments")

# 4. Convert back to stored integers: round to nearest, clip to the range BitsStored and
#    PixelRepresentation allow (signed images have a signed range), keep the dtype.
stored = stack.to_stored(corrected)

# 5. Update the metadata (new SOP Instance and Series UIDs, ImageType DERIVED\SECONDARY,
#    derivation codes, source reference, contributing equipment, pixel range, window) and save.
derivation = Derivation("moments", sigma.sigma, f_size, coils=1, estimator="mle")
(derived,) = derive_datasets(stack, stored, derivation)
written = write_dataset(derived, out / "output" / source.name, protected=[source])
print(f"wrote {written}")

# 6. Compare visually: one shared scale, the ROI outlined, background histograms with Rayleigh fits.
figure = save_qc(out / "qc.png", magnitude, corrected, mask, sigma.sigma)
print(f"QC figure: {figure}")
