"""The numpy runtime against torch: the frozen graph computes what the trained network does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from codec import transforms
from codec.transforms import conv2d, pixel_shuffle, run_graph

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize(("stride", "padding", "kernel"), [(1, 0, 3), (1, 1, 3), (2, 2, 5), (2, 1, 3)])
@pytest.mark.parametrize("outputs", [5, 1])  # 1 of 4 inputs: the product-then-shifted-sums path
@pytest.mark.parametrize("block_bytes", [transforms.BLOCK_BYTES, 40_000, 1])  # all at once, an image, a row at a time
def test_conv2d_matches_torch(
    stride: int, padding: int, kernel: int, outputs: int, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transforms, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 13, 11)).astype(np.float32)
    w = rng.standard_normal((outputs, 4, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(outputs).astype(np.float32)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=padding)
    np.testing.assert_allclose(conv2d(x, w, b, stride, padding), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_gdn_matches_definition() -> None:
    from codec.transforms import gdn_nhwc

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5))
    beta, gamma = rng.uniform(0.5, 2, 5), rng.uniform(0, 0.3, (5, 5))
    norm = np.sqrt(beta + np.einsum("ij,nhwj->nhwi", gamma, x**2))
    np.testing.assert_allclose(gdn_nhwc(x, beta, gamma), x / norm, rtol=1e-12)
    np.testing.assert_allclose(gdn_nhwc(x, beta, gamma, inverse=True), x * norm, rtol=1e-12)


def test_pixel_shuffle_matches_torch() -> None:
    x = np.arange(2 * 8 * 3 * 5, dtype=np.float32).reshape(2, 8, 3, 5)
    expected = F.pixel_shuffle(torch.from_numpy(x), 2).numpy()
    assert np.array_equal(pixel_shuffle(x, 2), expected)


@pytest.mark.parametrize(
    ("grid", "activation", "depth", "synthesis"),
    [(7, "relu", 0, None), (1, "relu", 0, None), (7, "gdn", 1, None), (7, "relu", 1, 8), (1, "relu", 1, 8)],
)
def test_frozen_model_matches_torch(
    digits: np.ndarray, grid: int, activation: str, depth: int, synthesis: int | None
) -> None:
    """Every architecture freezes to a graph the numpy runtime runs as torch does: a narrower synthesis (hidden
    ``synthesis``, no extra convolutions) too."""
    from codec.training.freeze import freeze_model
    from codec.training.model import GDN, Architecture, Autoencoder

    torch.manual_seed(0)
    arch = Architecture(latent_channels=6, hidden=16, grid=grid, dense=32, activation=activation, depth=depth)
    if synthesis is not None:
        arch = replace(arch, synthesis_hidden=synthesis, synthesis_depth=0)
    model = Autoencoder(arch).eval()
    with torch.no_grad():
        for gdn in (m for m in model.modules() if isinstance(m, GDN)):  # off its identity-like start
            gdn.gamma_root.add_(0.1 * torch.rand_like(gdn.gamma_root))
            gdn.beta_root.mul_(1 + torch.rand_like(gdn.beta_root))
    graph, arrays = freeze_model(model)
    if synthesis is not None:  # narrower than the analysis, which keeps its width
        symmetric = Autoencoder(replace(arch, synthesis_hidden=None, synthesis_depth=None))
        assert sum(p.numel() for p in model.synthesis.parameters()) < sum(
            p.numel() for p in symmetric.synthesis.parameters()
        )
        assert sum(p.numel() for p in model.analysis.parameters()) == sum(
            p.numel() for p in symmetric.analysis.parameters()
        )
    if activation == "gdn":
        assert any(op["op"] == "gdn" and op["inverse"] for op in graph["synthesis"])
    with torch.no_grad():  # the frozen weights are float16: compare with the same weights
        for p in [*model.analysis.parameters(), *model.synthesis.parameters()]:
            p.copy_(p.half().float())
    x = digits[:16].astype(np.float32) / 255
    with torch.no_grad():
        y = model.analysis(torch.from_numpy(x)[:, None])
        images = torch.sigmoid(model.synthesis(torch.round(y)))
    latents = run_graph(graph["analysis"], arrays, x[:, None])
    np.testing.assert_allclose(latents, y.numpy(), rtol=1e-4, atol=1e-5)
    restored = run_graph(graph["synthesis"], arrays, np.rint(latents).astype(np.float32))
    np.testing.assert_allclose(restored, images.numpy(), atol=1e-5)
    # The frozen tables code the latents at the rate the trained prior predicts.
    pmf = model.prior.pmf().detach().double().numpy()
    assert arrays["prior.index"].shape == (1, *pmf.shape[:3]) and arrays["prior.selector"].tolist() == [1 << 16]
    freqs = arrays["prior.bank"][arrays["prior.index"][0]].astype(np.float64)
    np.testing.assert_allclose(freqs / freqs.sum(-1, keepdims=True), pmf / pmf.sum(-1, keepdims=True), atol=1e-3)


def test_quantization_step_is_frozen_into_graph_and_tables(digits: np.ndarray) -> None:
    from codec.training.freeze import freeze_model
    from codec.training.model import Architecture, Autoencoder

    torch.manual_seed(1)
    model = Autoencoder(Architecture(latent_channels=4, hidden=16)).eval()
    graph, arrays = freeze_model(model, step=2.0)
    plain, _ = freeze_model(model)
    x = digits[:8, None].astype(np.float32) / 255
    np.testing.assert_allclose(
        run_graph(graph["analysis"], arrays, x), run_graph(plain["analysis"], arrays, x) / 2, rtol=1e-6, atol=1e-7
    )
    q = np.rint(run_graph(graph["analysis"], arrays, x))
    np.testing.assert_allclose(run_graph(graph["synthesis"], arrays, q), run_graph(plain["synthesis"], arrays, 2 * q))
    # Symbol k takes the prior's mass on [(k - 1/2) * step, (k + 1/2) * step].
    with torch.no_grad():
        coarse, fine = model.prior.pmf(2.0).double(), model.prior.pmf(1.0).double()
    torch.testing.assert_close(coarse.sum(-1), torch.ones_like(coarse.sum(-1)))
    r = model.arch.symbol_radius

    def cdf(t: float) -> torch.Tensor:
        with torch.no_grad():
            return model.prior._cdf(torch.full((*fine.shape[:3], 1), t)).double()[..., 0]

    torch.testing.assert_close(coarse[..., r + 1], cdf(3.0) - cdf(1.0))


def test_levels_of_one_network_share_its_weights(tmp_path: Path, digits: np.ndarray) -> None:
    from codec import models
    from codec.errors import ModelError
    from codec.training.freeze import freeze_model
    from codec.training.model import Architecture, Autoencoder

    torch.manual_seed(2)
    model = Autoencoder(Architecture(latent_channels=4, hidden=16)).eval()
    digests = {}
    for level, step in ((1, 1.5), (2, 1.0)):
        graph, arrays = freeze_model(model, step, name="tiny")
        digests[level] = models.save_level(tmp_path, level, graph, arrays)
    stored = {f"{digests[level][:16]}.npz" for level in digests} | {"transforms-tiny.npz"}
    assert {p.name for p in (tmp_path / "models").glob("*.npz")} == stored  # the weights once, for both levels
    own = tmp_path / "models" / f"{digests[1][:16]}.npz"
    assert own.stat().st_size < (tmp_path / "models" / "transforms-tiny.npz").stat().st_size
    for level, digest in digests.items():
        loaded = models.load_model(level, tmp_path)
        assert loaded.digest == digest  # the id covers the shared weights too
    x = digits[:4] / np.float32(255)
    coarse, fine = models.load_model(1, tmp_path), models.load_model(2, tmp_path)
    np.testing.assert_allclose(coarse.analyse(x) * 1.5, fine.analyse(x), rtol=1e-5, atol=1e-6)
    (tmp_path / "models" / "transforms-tiny.npz").unlink()
    models.clear_cache()
    with pytest.raises(ModelError, match="transforms-tiny.npz are missing"):
        models.load_model(1, tmp_path)
    models.clear_cache()
