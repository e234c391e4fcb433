"""The shipped quality levels: the trade-off each one is trained for."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Architecture


@dataclass(frozen=True)
class LevelConfig:
    """What ``aec train --level N`` trains: lambda weighs distortion against rate."""

    level: int
    lmbda: float
    arch: Architecture


#: Level 1 is the smallest file, the last level the best quality.
LEVELS: dict[int, LevelConfig] = {
    cfg.level: cfg
    for cfg in (
        LevelConfig(1, 2.5, Architecture(latent_channels=8)),
        LevelConfig(2, 8.0, Architecture(latent_channels=8)),
        LevelConfig(3, 25.0, Architecture(latent_channels=12)),
        LevelConfig(4, 75.0, Architecture(latent_channels=12)),
        LevelConfig(5, 220.0, Architecture(latent_channels=16)),
        LevelConfig(6, 650.0, Architecture(latent_channels=16)),
        LevelConfig(7, 2000.0, Architecture(latent_channels=16)),
        LevelConfig(8, 6000.0, Architecture(latent_channels=16)),
    )
}
