"""Measuring avatars against their photos: rendering in the photo's pose, likeness (NME and
identification), robustness to lighting and frames, and the ``vrhub eval`` report."""
