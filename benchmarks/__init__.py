"""The rate-distortion benchmark suite: aec against the classic codecs, PCA and itself.

``aec bench`` (or ``python -m benchmarks``) measures every shipped aec level and every
baseline setting on the MNIST test set (or any folder of images) and writes a
results file, Markdown tables and plots to ``benchmarks/results/``.

Modules: :mod:`.baselines` (classic codecs through their Python bindings),
:mod:`.pca` (the PCA codec), :mod:`.rd` (BD-rate and rate at a target PSNR),
:mod:`.suite` (measure and report), :mod:`.plots` (curves, gallery, latent view).
"""
