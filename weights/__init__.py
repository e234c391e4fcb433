"""The shipped models: the model store (``models/``, every frozen model by its digest) and ``presets.json``
(which stored model each role codes with); see :mod:`codec.store`.

Produced by ``aec train``, ``aec freeze``, ``aec train-refinement`` and ``aec train-lossless``; installed as
``codec.weights``.
"""
