"""The shipped models: one ``level-N.npz`` (arrays) and ``level-N.json`` (metadata) per quality level.

Produced by ``aec train`` and ``aec freeze``; installed as ``codec.weights``.
"""
