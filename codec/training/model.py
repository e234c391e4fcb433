"""The trainable autoencoder (torch): analysis and synthesis transforms and the prior.

``forward`` is the training path: it adds uniform noise to the latents for the
rate term and rounds them with a straight-through gradient for the synthesis.
Coding never runs this module: :mod:`codec.training.freeze` turns it into plain
arrays and integer probability tables that :mod:`codec.runtime` executes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: Side of the feature map the two stride-2 convolutions make of a 28x28 digit.
FEATURE_SIDE = 28 // 4
#: The nonlinearities the transforms can use between their convolutions.
ACTIVATIONS = ("relu", "gdn")


@dataclass(frozen=True)
class Architecture:
    """Hyper-parameters fixing the shape of one quality level's network."""

    latent_channels: int = 16
    hidden: int = 48
    grid: int = 7  # latent rows and columns for a 28x28 input: 7, or 1 for one vector per digit
    symbol_radius: int = 24  # latents are coded as integers in [-R, R]
    mixture: int = 3  # logistic components per latent in the prior
    dense: int = 128  # width of the fully connected layer of a one-vector (grid 1) latent
    depth: int = 0  # extra 3x3 convolutions (with ReLU) at each scale of both transforms
    activation: str = "relu"  # between the transforms' convolutions: "relu", or "gdn" (GDN / inverse GDN)
    variational: bool = False  # a variational autoencoder (:class:`VariationalAutoencoder`)
    #: The synthesis's own width and extra convolutions (None: the analysis's): a narrower synthesis decodes faster.
    synthesis_hidden: int | None = None
    synthesis_depth: int | None = None

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al.): ``x / sqrt(beta + gamma @ x**2)`` per position.

    ``inverse`` multiplies instead (IGDN, for the synthesis). beta and gamma are
    kept non-negative by storing their square roots (beta above a floor).
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.eye(channels) * math.sqrt(0.1))

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective (beta, gamma)."""
        return self.beta_root.square() + 1e-6, self.gamma_root.square()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.params()
        norm = F.conv2d(x * x, gamma.unsqueeze(-1).unsqueeze(-1), beta).sqrt()
        return x * norm if self.inverse else x / norm


def _act(arch: Architecture, channels: int, inverse: bool) -> nn.Module:
    """The nonlinearity between convolutions of ``channels`` outputs."""
    if arch.activation == "relu":
        return nn.ReLU()
    if arch.activation == "gdn":
        return GDN(channels, inverse)
    raise ValueError(f"unknown activation {arch.activation!r}")


def _refine(channels: int, depth: int) -> list[nn.Module]:
    """``depth`` size-preserving 3x3 convolutions, each followed by a ReLU."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return layers


def _analysis(arch: Architecture) -> nn.Sequential:
    n = arch.hidden
    head: list[nn.Module] = [
        nn.Conv2d(1, n, 5, stride=2, padding=2),
        _act(arch, n, inverse=False),
        *_refine(n, arch.depth),
        nn.Conv2d(n, n, 5, stride=2, padding=2),
        _act(arch, n, inverse=False),
        *_refine(n, arch.depth),
    ]
    if arch.grid == 1:
        # One latent vector per 28x28 block: a 7x7 convolution with stride 7 is a
        # fully connected layer over the block's 7x7 feature map.
        return nn.Sequential(
            *head,
            nn.Conv2d(n, arch.dense, FEATURE_SIDE, stride=FEATURE_SIDE),
            nn.ReLU(),
            nn.Conv2d(arch.dense, arch.latent_channels, 1),
        )
    if arch.grid != FEATURE_SIDE:
        raise ValueError(f"latent grid must be {FEATURE_SIDE} or 1, not {arch.grid}")
    return nn.Sequential(*head, nn.Conv2d(n, arch.latent_channels, 3, padding=1))


def _synthesis(arch: Architecture) -> nn.Sequential:
    n = arch.hidden if arch.synthesis_hidden is None else arch.synthesis_hidden
    depth = arch.depth if arch.synthesis_depth is None else arch.synthesis_depth
    if arch.grid == 1:
        head: list[nn.Module] = [
            nn.Conv2d(arch.latent_channels, arch.dense, 1),
            nn.ReLU(),
            nn.Conv2d(arch.dense, FEATURE_SIDE**2 * n, 1),
            nn.PixelShuffle(FEATURE_SIDE),
            nn.ReLU(),
            nn.Conv2d(n, n, 3, padding=1),
        ]
    else:
        head = [nn.Conv2d(arch.latent_channels, n, 3, padding=1)]
    return nn.Sequential(
        *head,
        _act(arch, n, inverse=True),
        *_refine(n, depth),
        nn.Conv2d(n, 4 * n, 3, padding=1),
        nn.PixelShuffle(2),
        _act(arch, n, inverse=True),
        *_refine(n, depth),
        nn.Conv2d(n, 4 * (n // 2), 3, padding=1),
        nn.PixelShuffle(2),
        _act(arch, n // 2, inverse=True),
        nn.Conv2d(n // 2, 1, 3, padding=1),
    )


class PositionalPrior(nn.Module):
    """A mixture of logistics for every latent channel and position.

    MNIST digits are centred on a black background, so the statistics of a latent
    depend strongly on where it sits: a prior per channel *and* position spends
    almost nothing on the empty border.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        shape = (arch.latent_channels, arch.grid, arch.grid, arch.mixture)
        self.radius = arch.symbol_radius
        spread = torch.linspace(-1.0, 1.0, arch.mixture).expand(shape).clone()
        self.means = nn.Parameter(spread)
        self.log_scales = nn.Parameter(torch.zeros(shape))
        self.weight_logits = nn.Parameter(torch.zeros(shape))

    def _cdf(self, t: torch.Tensor) -> torch.Tensor:
        """Mixture CDF at points ``t`` of shape (..., C, H, W, K) -> same shape."""
        means = self.means.unsqueeze(-2)
        scales = self.log_scales.clamp(-7.0, 7.0).exp().unsqueeze(-2)
        weights = torch.softmax(self.weight_logits, dim=-1).unsqueeze(-2)
        return (torch.sigmoid((t.unsqueeze(-1) - means) / scales) * weights).sum(-1)

    def _bin_mass(self, centre: torch.Tensor, width: float = 1.0) -> torch.Tensor:
        """Mass of the bin of ``width`` around ``centre``, the outermost bins taking the tails.

        The tails are folded in with ``where`` on the CDF values, never with
        infinite bounds, so no gradient meets ``0 * inf``.
        """
        edge = (self.radius - 0.5) * width
        upper = torch.where(centre > edge, torch.ones_like(centre), self._cdf(centre + 0.5 * width))
        lower = torch.where(centre < -edge, torch.zeros_like(centre), self._cdf(centre - 0.5 * width))
        return upper - lower

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Probability of the unit bin around each (noisy) latent of shape (B, C, H, W)."""
        return self._bin_mass(y.unsqueeze(-1)).squeeze(-1).clamp_min(1e-9)

    def pmf(self, step: float = 1.0) -> torch.Tensor:
        """The prior's probability of every integer symbol: shape (C, H, W, 2R+1).

        With a quantization ``step``, symbol ``k`` stands for the latent ``k * step``
        and takes the prior's mass of the bin of width ``step`` around it.
        """
        r = self.radius
        c, h, w, _ = self.means.shape
        k = torch.arange(-r, r + 1, dtype=self.means.dtype).expand(c, h, w, -1)
        return self._bin_mass(k * step, step)


class Autoencoder(nn.Module):
    """Convolutional autoencoder with a positional prior over its integer latents."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.analysis = _analysis(arch)
        self.synthesis = _synthesis(arch)
        self.prior = PositionalPrior(arch)
        # Start the output near the mean ink level: a sigmoid that starts at 0.5 on a
        # mostly black dataset saturates in the first steps and never recovers.
        last = self.synthesis[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -2.0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass on images in [0, 1] of shape (B, 1, 28, 28).

        Returns the synthesis logits, the rate in bits per image, and the
        rounded latents.
        """
        r = self.arch.symbol_radius
        y = self.analysis(x).clamp(-r, r)
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        bits = -torch.log2(self.prior.likelihood(noisy)).sum(dim=(1, 2, 3))
        rounded = y + (torch.round(y) - y).detach()
        logits = self.synthesis(rounded)
        return {"logits": logits, "bits": bits, "latents": torch.round(y)}


#: The standard deviation of the Gaussian prior over a variational model's latents, in quantization steps: wide
#: enough that rounding the posterior means (what the frozen model codes) costs the decoder little.
PRIOR_SCALE = 8.0


class VariationalAutoencoder(Autoencoder):
    """A variational autoencoder (Kingma and Welling 2014) on the same transforms.

    The analysis gives the posterior's mean; a second convolution over the
    features before it gives its log-variance. Training draws the latents from
    the posterior, and the rate is the KL divergence from the prior
    N(0, :data:`PRIOR_SCALE`^2) in bits (with lambda on the distortion: a
    beta-VAE of beta 1 / lambda). The positional prior learns the tables that
    code the rounded posterior means (its term reaches no other weight), so the
    frozen model codes an image like any level, and ``aec sample`` decodes
    latents drawn from the Gaussian prior.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__(arch)
        # The log-variance head: the shape of the analysis' last convolution (the mean), over the same features.
        if arch.grid == 1:
            self.log_variance = nn.Conv2d(arch.dense, arch.latent_channels, 1)
        else:
            self.log_variance = nn.Conv2d(arch.hidden, arch.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass on images in [0, 1] of shape (B, 1, 28, 28): logits, rate (KL and table bits), latents."""
        features = self.analysis[:-1](x)
        mean = self.analysis[-1](features)
        log_variance = self.log_variance(features).clamp(-12.0, 8.0)
        sample = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
        prior_variance = PRIOR_SCALE**2
        kl = 0.5 * (
            (mean.square() + log_variance.exp()) / prior_variance - 1.0 - log_variance + math.log(prior_variance)
        )
        kl_bits = kl.sum(dim=(1, 2, 3)) / math.log(2.0)
        r = self.arch.symbol_radius
        coded = mean.detach().clamp(-r, r)  # what the frozen model codes: the tables learn it, nothing else does
        noisy = coded + torch.empty_like(coded).uniform_(-0.5, 0.5)
        table_bits = -torch.log2(self.prior.likelihood(noisy)).sum(dim=(1, 2, 3))
        return {
            "logits": self.synthesis(sample),
            "bits": kl_bits + table_bits,
            "kl_bits": kl_bits,
            "latents": torch.round(coded),
        }


def build(arch: Architecture) -> Autoencoder:
    """The network of ``arch``: variational or not."""
    return VariationalAutoencoder(arch) if arch.variational else Autoencoder(arch)


def distortion(logits: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-image distortion: MSE on [0, 1] pixels, or binary cross-entropy in bits."""
    if loss == "mse":
        return F.mse_loss(torch.sigmoid(logits), x, reduction="none").mean(dim=(1, 2, 3))
    if loss == "bce":
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return bce.mean(dim=(1, 2, 3)) / math.log(2)
    raise ValueError(f"unknown loss {loss!r}")
