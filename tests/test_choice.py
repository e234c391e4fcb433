"""The per-image choice of any level's model: a lower cost, plain files, quality rising with the level, effort 0
untouched."""

from __future__ import annotations

import numpy as np
import pytest

import codec
from codec import choice, encoder, models, resolution
from codec.images import prepare
from codec.metrics import mse, psnr
from codec.search import DEFAULT_EFFORT

LEVEL = 5


def _cost(files: list[bytes], images: np.ndarray, lmbda: float) -> float:
    """What the choice minimises, measured on real files: payload bits + lambda * SSE (pixels in [0, 1])."""
    decoded = np.stack(codec.decompress_many(files))
    sse = mse(images, decoded) * images[0].size / 255.0**2
    bits = 8 * np.array([codec.inspect(f).payload_bytes for f in files])
    return float(np.sum(bits + lmbda * sse))


def test_a_digit_weighs_every_levels_own_model_whatever_the_level() -> None:
    installed = models.available_levels()
    own = {models.load_model(q).digest for q in installed}
    weighed = [[m.digest for m, s in encoder._pairs(q, installed, 28, 28, None) if s == 1] for q in (1, 8, 15)]
    assert weighed[0] == weighed[1] == weighed[2] and set(weighed[0]) == own and len(weighed[0]) == len(own)
    assert not own & {models.load_general(q).digest for q in installed}  # no general variant for a digit


def test_choice_lowers_the_cost_on_real_digits(digits: np.ndarray) -> None:
    images = digits[:40]
    lmbda = models.load_model(LEVEL).search_lambda
    own = encoder.code_with(models.load_model(LEVEL), [prepare(image) for image in images], LEVEL, DEFAULT_EFFORT)
    chosen = codec.compress_many(images, LEVEL)
    levels = [codec.inspect(f).header.level for f in chosen]
    assert len(set(levels)) > 2
    assert _cost(chosen, images, lmbda) < 0.98 * _cost(own, images, lmbda)


def test_each_image_gets_its_cheapest_rounded_candidate(digits: np.ndarray) -> None:
    images = digits[:30]
    lmbda = models.load_model(LEVEL).search_lambda
    levels = models.available_levels()  # levels that share a model cost the same: argmin takes the first
    costs = np.stack([choice.rounded_costs(models.load_model(q), images / np.float32(255), lmbda) for q in levels], 1)
    prepared = [prepare(image) for image in images]
    assert [m.level for m, _ in encoder.choose_codings(prepared, LEVEL)] == [levels[i] for i in costs.argmin(1)]
    assert [m.level for m, _ in encoder.choose_codings(prepared, LEVEL, effort=0)] == [LEVEL] * len(images)


def test_rounded_cost_is_the_rounded_files_cost(digits: np.ndarray) -> None:
    """Rounded cost from the ideal code length is within a byte per image of the coder's real payload."""
    images = digits[:20]
    model = models.load_model(LEVEL)
    files = codec.compress_many(images, LEVEL, effort=0)  # effort 0: the level's own model, rounded
    per_image = choice.rounded_costs(model, images / np.float32(255), model.search_lambda)
    measured = np.array([_cost([f], images[i : i + 1], model.search_lambda) for i, f in enumerate(files)])
    assert np.all(np.abs(per_image - measured) <= 12)


def test_images_over_the_general_limit_keep_their_level() -> None:
    installed = models.available_levels()
    side = int(choice.GENERAL_PIXELS**0.5) + 4
    assert not choice.general_applies(side, side) and choice.general_applies(130, 130)
    big = encoder.off_home_candidates(LEVEL, installed, side, side)
    assert [m.level for m in big] == [LEVEL, LEVEL] and big[1].digest == models.load_general(LEVEL).digest


def test_off_home_candidates_are_every_distinct_model_whatever_the_level() -> None:
    installed = models.available_levels()
    small = [encoder.off_home_candidates(q, installed, 40, 60) for q in (1, 8, 15)]
    assert [m.digest for m in small[0]] == [m.digest for m in small[1]] == [m.digest for m in small[2]]
    generals = {models.load_general(q).digest for q in installed}
    assert {m.digest for m in small[0]} == {models.load_model(q).digest for q in installed} | generals
    assert len(small[0]) == len({m.digest for m in small[0]})
    middle = encoder.off_home_candidates(LEVEL, installed, 200, 200)  # over the search's limit
    assert not choice.applies(200, 200) and {m.digest for m in middle} == generals


def test_quality_rises_with_the_level_off_mnist(photo: np.ndarray, digits: np.ndarray) -> None:
    """Off the digit size every level weighs one fixed set (of files up to 128x128 px, of (model, scale) pairs and
    their rounded latents above), so a higher level never loses PSNR (the cheapest of one set under a larger lambda
    never has a larger squared error)."""
    from PIL import Image

    big_digit = np.asarray(Image.fromarray(digits[3]).resize((60, 60), Image.Resampling.LANCZOS))
    for image in (photo, big_digit):
        quality = [psnr(image, codec.decompress(codec.compress(image, quality=q, effort=1))) for q in range(1, 16)]
        assert all(b >= a - 0.05 for a, b in zip(quality, quality[1:])), np.round(quality, 2)


@pytest.mark.parametrize("effort", [1, DEFAULT_EFFORT])
def test_quality_rises_with_the_level_on_real_digits(digits: np.ndarray, effort: int) -> None:
    """MNIST digits weigh one set of searched files at every level too: the squared error of a digit's file never
    grows with the level (each level searching its own latents made 35 % of the test digits dip somewhere, by up
    to 2 dB)."""
    dipped = []
    for i, image in enumerate(digits[100 : 112 if effort == 1 else 106]):
        errors = [mse(image, codec.decompress(codec.compress(image, quality=q, effort=effort))) for q in range(1, 16)]
        if any(b > a for a, b in zip(errors, errors[1:])):
            dipped.append((i, np.round(errors, 2)))
    assert not dipped


def test_rates_and_errors_are_remembered_per_model_and_image(digits: np.ndarray) -> None:
    images = digits[:6] / np.float32(255)
    model = models.load_model(LEVEL)
    bits, sse = choice.rounded_rate_distortion(model, images)
    again = choice.rounded_rate_distortion(model, images.copy())
    assert again[0] is bits and again[1] is sse and not bits.flags.writeable
    other = choice.rounded_rate_distortion(model, images[::-1].copy())
    assert np.array_equal(other[0], bits[::-1]) and other[0] is not bits
    for lmbda in (1.0, 100.0):
        assert np.allclose(choice.rounded_costs(model, images, lmbda), bits + lmbda * sse)
    encoder.forget()  # what a timing of one level does first: measured again, the same values
    fresh = choice.rounded_rate_distortion(model, images)
    assert fresh[0] is not bits and np.array_equal(fresh[0], bits) and np.array_equal(fresh[1], sse)


def test_only_25_to_28_pixel_images_are_digit_sized() -> None:
    """A one-vector model's home grid holds any image up to 28 px a side; a 21x21 image is still not a digit to the
    levels (it weighs the general variants, as every other size does)."""
    vector = next(level for level in models.available_levels() if models.load_model(level).prior.grid == (1, 1))
    assert choice.home_size(models.load_model(vector), 21, 21) and not choice.digit_sized(21, 21)
    assert choice.digit_sized(25, 28) and not choice.digit_sized(24, 28) and not choice.digit_sized(28, 29)
    general = models.load_general(vector)
    assert general is not None and encoder.own_model(vector, 21, 21).digest == general.digest


def test_off_mnist_each_image_gets_its_cheapest_model_and_scale(photo: np.ndarray) -> None:
    """An image that is not digit-sized weighs every (model, scale) pair, each scaled one's error measured at full
    size after the format's upsampling; it gets the pair of lowest rounded cost, the same pairs at every level."""
    installed = models.available_levels()
    models_ = encoder.off_home_candidates(LEVEL, installed, *photo.shape)
    scales = (1, *resolution.scales_for(*photo.shape))
    assert scales == (1, 2, 4)  # 64x80: a quarter is 16x20, at the smallest side kept
    coarse = {s: resolution.downscale(photo, s)[None] / np.float32(255) for s in scales[1:]}
    images = photo[None] / np.float32(255)
    for level in (2, LEVEL, 12):
        lmbda = models.load_model(level).search_lambda
        costs = [
            bits[0] + lmbda * sse[0]
            for s in scales
            for bits, sse in (choice.rounded_rate_distortion(m, images, None, coarse.get(s), s) for m in models_)
        ]
        pairs = [(m.digest, s) for s in scales for m in models_]
        ((model, scale),) = encoder.choose_codings([prepare(photo)], level)
        assert (model.digest, scale) == pairs[int(np.argmin(costs))]


def test_a_scaled_candidate_is_weighed_by_what_its_file_decodes_to(photo: np.ndarray) -> None:
    """The rounded rate and error of a scaled candidate are those of the file it makes (effort 0: rounded latents,
    the model's tables): bits within 12 of the payload's, error within the rounding to 8 bits."""
    model = encoder.own_model(LEVEL, *photo.shape)
    coarse = resolution.downscale(photo, 2) / np.float32(255)
    bits, sse = choice.rounded_rate_distortion(model, photo[None] / np.float32(255), None, coarse[None], 2)
    _, payloads = encoder.encode_payloads([prepare(photo)], LEVEL, 0, model=model, in_context=False, scale=2)
    (data,) = encoder.pack_files(model, [prepare(photo)], payloads, 2)
    decoded_sse = float((((codec.decompress(data).astype(np.float64) - photo) / 255) ** 2).sum())
    assert abs(8 * len(payloads[0].data) - bits[0]) <= 12
    assert abs(decoded_sse - sse[0]) <= 0.02 * sse[0]
    full_bits, full_sse = choice.rounded_rate_distortion(model, photo[None] / np.float32(255))
    assert bits[0] < 0.5 * full_bits[0] and sse[0] > full_sse[0]  # a quarter of the latents, a blurrier image


def test_large_off_mnist_files_code_the_chosen_pairs_rounded_latents() -> None:
    """An image over the search's limit that is not digit-sized is not searched: its file is the chosen pair's
    rounded latents, so its rate and error are those the choice weighed."""
    from skimage import data as samples

    large = samples.camera()[:144:2, :560:2]  # 72x280: over 128x128 pixels
    assert encoder.search_effort(2, *large.shape) == 0 and encoder.search_effort(2, 64, 80) == 2
    assert encoder.search_effort(2, 28, 28) == 2 and encoder.search_effort(1, 300, 60) == 0
    for level in (3, 10):
        ((model, scale),) = encoder.choose_codings([prepare(large)], level)
        _, payloads = encoder.encode_payloads([prepare(large)], level, 0, model=model, scale=scale)
        assert codec.compress(large, quality=level) == encoder.pack_files(model, [prepare(large)], payloads, scale)[0]


@pytest.mark.parametrize("kind", ["photo", "digit"])
def test_small_images_take_the_cheapest_of_one_set_of_searched_files(
    photo: np.ndarray, digits: np.ndarray, kind: str
) -> None:
    """Up to the search's limit an image (a digit too) gets the cheapest file, measured on the files, of one set
    whatever the level: the pairs the levels' lambdas pick, each searched once."""
    image = photo if kind == "photo" else digits[7]
    files, (bits, sse) = encoder.weighed_files(prepare(image), DEFAULT_EFFORT)
    assert 1 < len(files) <= len(models.available_levels())
    installed = models.available_levels()
    picks = {(m.digest, s) for q in installed for ((m, s),) in [encoder.choose_codings([prepare(image)], q)]}
    assert len(picks) == len(files)
    for data, b, e in zip(files, bits, sse):
        assert b == 8 * len(data) and e == pytest.approx(mse(image, codec.decompress(data)) * image.size / 255**2)
    for level in installed:
        data = codec.compress(image, quality=level)
        assert data == files[int(np.argmin(bits + models.load_model(level).search_lambda * sse))]
