"""The one image decoding path (`training.tipsv2.decoding`) on real photos and what cameras, scanners and browsers
make of them: every variant decodes to the upright RGB picture computed independently in `tests/photos.py`."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests import photos
from tests.photos import Variant
from training.tipsv2.decoding import ImageDecodeError, ImageTooLarge, decode_image, describe
from training.tipsv2.preprocess import resize_uint8

CORPUS = photos.corpus()


@pytest.mark.parametrize("variant", CORPUS, ids=[v.id for v in CORPUS])
def test_every_variant_decodes_to_the_upright_picture(variant: Variant) -> None:
    decoded = decode_image(variant.data)
    assert decoded.mode == "RGB"
    got = np.asarray(decoded)
    assert got.shape == variant.expected.shape
    assert np.array_equal(got, variant.expected), np.abs(got.astype(int) - variant.expected).max()


def test_the_corpus_is_real_photos_in_each_format() -> None:
    formats = {v.name: Image.open(io.BytesIO(v.data)) for v in photos.variants("rocket.jpg")}
    assert formats["progressive-jpeg"].info.get("progressive") == 1
    assert formats["gray16-png"].mode == "I;16"
    assert formats["cmyk-tiff"].mode == formats["cmyk-jpeg"].mode == "CMYK"
    assert formats["palette-transparent-png"].mode == "P" and "transparency" in formats["palette-transparent-png"].info
    assert getattr(formats["animated-gif"], "n_frames", 1) == getattr(formats["animated-webp"], "n_frames", 1) == 2
    assert formats["gray-float32-tiff"].mode == "F"
    assert formats["adobe-rgb-icc-png"].info["icc_profile"] == photos.wide_gamut_profile()
    assert all(formats[f"exif{o}-png"].getexif()[photos.ORIENTATION_TAG] == o for o in range(1, 9))
    assert photos.photo("rocket.jpg").shape == (427, 640, 3)


def test_sideways_phone_photo_is_turned_upright() -> None:
    """Defect 1: orientation 6 (stored rotated) displays as portrait, and decodes so."""
    rgb = photos.photo("rocket.jpg")  # 640 wide, 427 high
    stored = photos.with_orientation(rgb, 6, "PNG")
    assert Image.open(io.BytesIO(stored)).size == (427, 640)
    assert decode_image(stored).size == (640, 427)
    assert np.array_equal(np.asarray(decode_image(stored)), rgb)


def test_16_bit_scan_keeps_its_tones() -> None:
    """Defect 2: a 16-bit grayscale PNG used to convert to white; it is scaled instead."""
    levels = np.linspace(0, 65535, 256 * 4, dtype=np.float64).reshape(32, 32)
    image = Image.fromarray(np.asarray(np.rint(levels), dtype=np.uint16))
    got = np.asarray(decode_image(photos.encode(image, "PNG")))[..., 0]
    assert got.min() == 0 and got.max() == 255 and len(np.unique(got)) == 256
    assert np.array_equal(got, np.rint(np.rint(levels) * 255 / 65535))


def test_wide_gamut_profile_is_converted_as_colorimetry_says() -> None:
    """The ICC variant against the formulas (linearise, Adobe RGB -> XYZ D50 -> linear sRGB, clip, encode)."""
    rgb = photos.photo("coffee.png")
    got = np.asarray(decode_image(photos.encode(Image.fromarray(rgb), "PNG", icc_profile=photos.wide_gamut_profile())))
    linear = (rgb / 255.0) ** photos.WIDE_GAMUT_GAMMA
    xyz = linear @ photos.WIDE_GAMUT_COLORANTS.T
    srgb_d50 = np.array([[0.4361, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7141]])
    srgb_linear = np.clip(xyz @ np.linalg.inv(srgb_d50).T, 0, 1)
    encoded = np.where(srgb_linear <= 0.0031308, 12.92 * srgb_linear, 1.055 * srgb_linear ** (1 / 2.4) - 0.055)
    want = encoded * 255
    assert np.abs(got - want).mean() < 1.0
    assert np.abs(got - rgb.astype(float)).mean() > 5  # the conversion did something: wide-gamut values are not sRGB


def test_srgb_tagged_photos_pass_through_untouched() -> None:
    rgb = photos.photo("chelsea.png")
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photos.encode(Image.fromarray(rgb), "PNG", icc_profile=srgb)
    assert np.array_equal(np.asarray(decode_image(data)), rgb)


@pytest.mark.parametrize(
    ("mode", "values", "want"),
    [
        ("I", [[0, 1000], [65535, 30000]], [[0, 4], [255, 117]]),  # within 16 bits: 16-bit scaling
        ("I", [[-5, 0], [5, 15]], [[0, 64], [128, 255]]),  # any other range: stretched
        ("F", [[0.0, 0.5], [1.0, 0.25]], [[0, 128], [255, 64]]),
        ("F", [[-1.0, 0.0], [1.0, 3.0]], [[0, 64], [128, 255]]),
    ],
)
def test_wide_grayscale_is_scaled_not_clipped(mode: str, values: list[list[float]], want: list[list[int]]) -> None:
    array = np.asarray(values, dtype=np.int32 if mode == "I" else np.float32)
    image = Image.fromarray(array)
    assert image.mode == mode
    got = np.asarray(decode_image(photos.encode(image, "TIFF")))
    assert np.array_equal(got[..., 0], np.asarray(want)) and np.array_equal(got[..., 0], got[..., 2])


def test_float_image_with_nan_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="NaN"):
        decode_image(photos.encode(Image.fromarray(np.array([[0.0, np.nan]], np.float32)), "TIFF"))


def test_size_limit_is_image_too_large_before_decoding() -> None:
    data = photos.encode(Image.new("1", (3000, 2000)), "PNG")
    with pytest.raises(ImageTooLarge, match="3000x2000 pixels, above the limit of 4000000"):
        decode_image(data, max_pixels=4_000_000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n1 0 obj", "PDF document"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG is a vector format"),
        (b"just some text, not an image", "text, not an image"),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "HEIC/HEIF"),
        (photos.encode(Image.new("RGB", (64, 64)), "PNG")[:40], "PNG data is truncated or corrupt"),
        (photos.encode(Image.new("RGB", (64, 64)), "JPEG")[:300], "JPEG data is truncated or corrupt"),
        (bytes(range(256)) * 4, "not an image in a supported format"),
    ],
)
def test_undecodable_bytes_say_why_without_internals(data: bytes, reason: str) -> None:
    """Defect 3: no `<_io.BytesIO object at 0x...>` in a message, but what the bytes are."""
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    message = str(caught.value)
    assert reason in message and "0x" not in message and "<" not in message, message
    assert describe(data) == message or reason in message


def test_large_jpeg_decodes_at_reduced_scale_close_to_the_full_decode() -> None:
    """Rule 3: DCT scaling keeps both sides >= 2x the target; the resized input stays close to the full decode's."""
    rgb = photos.photo("astronaut.png")
    big = Image.fromarray(rgb).resize((2048, 2048), Image.Resampling.BICUBIC)
    data = photos.encode(big, "JPEG", quality=90)
    draft = decode_image(data, min_size=224)
    assert draft.size == (512, 512)  # 1/4 scale: the smallest that keeps 2 x 224 = 448
    full = decode_image(data)
    assert full.size == (2048, 2048)
    difference = np.abs(resize_uint8(draft, 224).astype(int) - resize_uint8(full, 224).astype(int))
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 8


def test_min_size_never_reduces_small_jpegs_or_other_formats() -> None:
    rgb = photos.photo("rocket.jpg")
    jpeg = photos.encode(Image.fromarray(rgb), "JPEG")
    assert np.array_equal(np.asarray(decode_image(jpeg, min_size=224)), photos.reference_decode(jpeg))
    png = photos.encode(Image.fromarray(rgb).resize((2000, 1400)), "PNG")
    assert decode_image(png, min_size=224).size == (2000, 1400)
