"""A corpus of real photos as people send them: scikit-image's bundled photos (files inside its wheel, never fetched)
and variants crafted from each, with the upright RGB pixels a correct decoder must produce.

Every variant's `expected` is computed here independently of `training.tipsv2.decoding`: orientations with numpy
rotations, 16-bit and float scaling and alpha compositing with numpy arithmetic, palettes by table lookup. Lossy
encodings (JPEG, lossy WebP) have as expectation PIL's plain full decode of the same bytes (the official
preprocessing's `Image.open(...).convert("RGB")`), oriented with numpy where they carry an orientation. ICC-tagged
variants expect LittleCMS's conversion (checked against the colorimetric formulas in the unit tests).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

# Real photos bundled in the scikit-image wheel (skimage/data/*.png|jpg), not the ones it downloads on demand.
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Variant:
    photo: str
    name: str
    data: bytes  # the file as a client sends it
    expected: np.ndarray  # (H, W, 3) uint8: the upright picture

    @property
    def id(self) -> str:
        return f"{Path(self.photo).stem}-{self.name}"


def photo_path(name: str) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / name


@cache
def photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 of a bundled photo."""
    with Image.open(photo_path(name)) as image:
        return np.asarray(image.convert("RGB"))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def reference_decode(data: bytes) -> np.ndarray:
    """PIL's plain decode, as the official preprocessing does it (no orientation, no colour management)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


# How a viewer turns the stored pixels into the displayed picture, per EXIF orientation (numpy, independent of PIL).
DISPLAY: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, k=-1),  # stored rotated 90 degrees counter-clockwise: rotate clockwise to display
    7: lambda a: np.rot90(a[:, ::-1], k=-1),  # mirrored, then rotated clockwise: the anti-diagonal transpose
    8: lambda a: np.rot90(a, k=1),
}
# The stored pixels of an upright picture under each orientation (the inverse of DISPLAY).
STORED: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, k=1),
    7: lambda a: np.rot90(a[:, ::-1], k=-1),  # the anti-diagonal transpose is its own inverse
    8: lambda a: np.rot90(a, k=-1),
}


def with_orientation(pixels: np.ndarray, orientation: int, fmt: str, **options: object) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(STORED[orientation](pixels)))
    exif = image.getexif()
    exif[ORIENTATION_TAG] = orientation
    return encode(image, fmt, exif=exif, **options)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float64 (H, W) in [0, 1]."""
    return np.asarray(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0)


def gray_rgb(levels: np.ndarray) -> np.ndarray:
    return np.repeat(levels.astype(np.uint8)[..., None], 3, axis=2)


def over_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The documented compositing, in floating point: round((c * a + 255 * (255 - a)) / 255)."""
    a = alpha.astype(np.float64)[..., None]
    return np.asarray(np.rint((colour.astype(np.float64) * a + 255.0 * (255.0 - a)) / 255.0), dtype=np.uint8)


def alpha_ramp(height: int, width: int) -> np.ndarray:
    """uint8 alpha: opaque on the left, transparent on the right, fully opaque top rows (every level present)."""
    ramp = np.linspace(255, 0, width)[None, :].repeat(height, axis=0)
    ramp[: height // 8] = 255
    return np.asarray(np.rint(ramp), dtype=np.uint8)


def variants(name: str) -> list[Variant]:
    rgb = photo(name)
    height, width = rgb.shape[:2]
    upright = Image.fromarray(rgb)
    out = [Variant(name, "png", encode(upright, "PNG"), rgb)]
    out += [Variant(name, f"exif{o}-png", with_orientation(rgb, o, "PNG"), rgb) for o in range(1, 9)]
    jpeg6 = with_orientation(rgb, 6, "JPEG", quality=92)
    out.append(Variant(name, "exif6-jpeg", jpeg6, DISPLAY[6](reference_decode(jpeg6))))
    for label, options in (("jpeg", {"quality": 90}), ("progressive-jpeg", {"quality": 90, "progressive": True})):
        data = encode(upright, "JPEG", **options)
        out.append(Variant(name, label, data, reference_decode(data)))
    out.append(Variant(name, "webp-lossless", encode(upright, "WEBP", lossless=True), rgb))
    lossy = encode(upright, "WEBP", quality=85)
    out.append(Variant(name, "webp-lossy", lossy, reference_decode(lossy)))
    out.append(Variant(name, "cmyk-tiff", encode(upright.convert("CMYK"), "TIFF"), rgb))  # K = 0: exact round trip
    cmyk_jpeg = encode(upright.convert("CMYK"), "JPEG", quality=92)
    out.append(Variant(name, "cmyk-jpeg", cmyk_jpeg, reference_decode(cmyk_jpeg)))
    out += [_gray16(name, rgb), _gray_float(name, rgb), _rgba(name, rgb), _gray_alpha(name, rgb)]
    out += [_palette_transparency(name, upright), _gif(name, upright), _webp_animated(name, rgb), _icc(name, rgb)]
    assert all(v.expected.shape[:2] in ((height, width), (width, height)) for v in out)
    return out


def corpus() -> list[Variant]:
    return [variant for name in PHOTOS for variant in variants(name)]


def _gray16(name: str, rgb: np.ndarray) -> Variant:
    """16-bit grayscale PNG using the low byte too (a scanner's output): must not saturate to white."""
    levels16 = np.asarray(np.rint(luminance(rgb) * 65535), dtype=np.uint16)
    expected = gray_rgb(np.rint(levels16.astype(np.float64) * 255 / 65535))
    return Variant(name, "gray16-png", encode(Image.fromarray(levels16), "PNG"), expected)


def _gray_float(name: str, rgb: np.ndarray) -> Variant:
    values = luminance(rgb).astype(np.float32)
    expected = gray_rgb(np.rint(values.astype(np.float64) * 255))
    return Variant(name, "gray-float32-tiff", encode(Image.fromarray(values), "TIFF"), expected)


def _rgba(name: str, rgb: np.ndarray) -> Variant:
    alpha = alpha_ramp(*rgb.shape[:2])
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    return Variant(name, "rgba-png", encode(rgba, "PNG"), over_white(rgb, alpha))


def _gray_alpha(name: str, rgb: np.ndarray) -> Variant:
    gray = np.asarray(np.rint(luminance(rgb) * 255), dtype=np.uint8)
    alpha = alpha_ramp(*gray.shape)
    image = Image.merge("LA", (Image.fromarray(gray), Image.fromarray(alpha)))
    return Variant(name, "gray-alpha-png", encode(image, "PNG"), gray_rgb(over_white(gray[..., None], alpha)[..., 0]))


def _palette_transparency(name: str, upright: Image.Image) -> Variant:
    """A 64-colour palette PNG whose most frequent index is transparent (a tRNS chunk, as GIF-like PNGs have)."""
    paletted = upright.quantize(64, dither=Image.Dither.NONE)
    index = np.asarray(paletted)
    table = np.asarray(paletted.getpalette()[: 64 * 3], dtype=np.uint8).reshape(64, 3)
    transparent = int(np.bincount(index.ravel()).argmax())
    expected = np.where((index == transparent)[..., None], np.uint8(255), table[index])
    return Variant(name, "palette-transparent-png", encode(paletted, "PNG", transparency=transparent), expected)


def _gif(name: str, upright: Image.Image) -> Variant:
    """An animated GIF: the first frame is the photo (256 colours), the second something else entirely."""
    first = upright.quantize(256, dither=Image.Dither.NONE)
    second = Image.new("RGB", upright.size, (255, 0, 0)).quantize(2)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    return Variant(name, "animated-gif", data, np.asarray(first.convert("RGB")))


def _webp_animated(name: str, rgb: np.ndarray) -> Variant:
    first = Image.fromarray(rgb)
    second = Image.new("RGB", first.size, (0, 0, 255))
    data = encode(first, "WEBP", lossless=True, save_all=True, append_images=[second], duration=100)
    return Variant(name, "animated-webp", data, rgb)


def _icc(name: str, rgb: np.ndarray) -> Variant:
    """The photo's values tagged with a wide-gamut profile (Adobe RGB primaries, gamma 2.2): shown converted to sRGB."""
    profile = wide_gamut_profile()
    data = encode(Image.fromarray(rgb), "PNG", icc_profile=profile)
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    converted = ImageCms.profileToProfile(
        Image.fromarray(rgb), source, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"
    )
    assert converted is not None
    return Variant(name, "adobe-rgb-icc-png", data, np.asarray(converted))


# Adobe RGB (1998) colorants adapted to D50 (the PCS white), columns r, g, b; and its gamma 563/256.
WIDE_GAMUT_COLORANTS = np.array([[0.6097, 0.2053, 0.1492], [0.3111, 0.6257, 0.0632], [0.0195, 0.0609, 0.7446]])
WIDE_GAMUT_GAMMA = 563 / 256
D50 = (0.9642, 1.0, 0.8249)


@cache
def wide_gamut_profile() -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curves), written field by field."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    description = b"Wide gamut test (Adobe RGB primaries)\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(description)) + description + b"\0" * 12 + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(WIDE_GAMUT_GAMMA * 256)) + b"\0\0"
    columns = WIDE_GAMUT_COLORANTS.T
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(D50)),
        (b"rXYZ", xyz(tuple(columns[0]))),
        (b"gXYZ", xyz(tuple(columns[1]))),
        (b"bXYZ", xyz(tuple(columns[2]))),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0public domain\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"none"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # rendering intent
        + b"".join(s15(v) for v in D50)
        + b"none"
        + b"\0" * 44
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
