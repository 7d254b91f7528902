"""Image bytes -> the upright sRGB picture a viewer shows: the one decoding path of the gateway and `tipsv2 encode`.

The rules (README "Image decoding"), in the order they apply:
1. Format: whatever PIL opens (JPEG, PNG, WebP, GIF, BMP, TIFF, ...). Animated and multi-frame files give their first
   frame. Anything else is an `ImageDecodeError` whose message says what the bytes look like (PDF, SVG, HEIC, text).
2. Size: `width x height` above `max_pixels` is refused (`ImageTooLarge`) before any pixel is decoded.
3. Large JPEGs (when the caller says how small the picture will be resized, `min_size`): libjpeg's DCT scaling decodes
   at 1/2, 1/4 or 1/8 scale, the smallest that keeps both sides at least `2 * min_size`. It skips the full-size
   inverse DCT and colour conversion (a 12-megapixel photo at 224: 13-31 ms instead of 47-66 ms; entropy decoding
   remains); its effect on embeddings is measured in docs/benchmarks.md. Segmentation decodes at full size, since its
   label map has the input's size.
4. Orientation: the EXIF orientation tag (1-8) is applied, so pixels come out as displayed (phone photos are often
   stored sideways with tag 6 or 8).
5. Colour: an embedded ICC profile that is not an sRGB profile is converted to sRGB by LittleCMS (relative
   colorimetric), when PIL has LittleCMS. CMYK without a profile uses PIL's conversion.
6. Pixel formats, to 8-bit RGB: 16-bit grayscale is scaled `round(v * 255 / 65535)` (not clipped); 32-bit integer
   grayscale within [0, 65535] is taken as 16-bit, other ranges are stretched from their minimum and maximum to
   [0, 255]; 32-bit float grayscale within [0, 1] is scaled by 255, other ranges stretched the same way, NaN or
   infinity refused; 1-bit is 0/255; 16-bit-per-channel colour keeps PIL's high byte.
7. Transparency (an alpha channel, a palette or colour-key transparency) is composited onto white:
   `round((c * a + 255 * (255 - a)) / 255)` per channel, what a page with a white background shows.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

RULES_VERSION = 2  # bump when a rule changes the pixels some bytes decode to: cached embeddings key on it
WHITE = 255
GRAY16_MAX = 65535
HAS_LITTLECMS = bool(features.check("littlecms2"))
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")) if HAS_LITTLECMS else None
TRANSPARENT_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
COLOUR_MODES = {"RGBX", "YCbCr", "HSV", "P", "1", "L", "CMYK"}  # PIL's own conversions to RGB
SUPPORTED = "JPEG, PNG, WebP, GIF, BMP or TIFF"


class ImageDecodeError(ValueError):
    """The bytes are not an image this path decodes; the message is for the client (no internal detail)."""


class ImageTooLarge(ImageDecodeError):
    """The image declares more pixels than allowed (a decompression bomb, or simply too large)."""


def rules_tag(jpeg_draft: bool) -> str:
    """What identifies the decoding of a cached image embedding: the rules' version and whether JPEGs are drafted."""
    return f"dec{RULES_VERSION}" + ("+draft" if jpeg_draft else "")


def decode_image(data: bytes, max_pixels: int = 40_000_000, *, min_size: int | None = None) -> Image.Image:
    """Image bytes -> upright 8-bit sRGB `RGB` image, by the module's rules.

    `min_size`: the side the picture will be resized to; lets a large JPEG decode at a reduced scale (rule 3).
    """
    image = _open(data, max_pixels)
    if min_size is not None and image.format in ("JPEG", "MPO"):
        image.draft(image.mode, (2 * min_size, 2 * min_size))
    _load(image)
    ImageOps.exif_transpose(image, in_place=True)
    return to_rgb(to_srgb(image))


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image declares more pixels than the limit of {max_pixels}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(describe(data)) from exc
    except Exception as exc:  # PIL raises many types on a malformed header (SyntaxError, struct.error, ...)
        raise ImageDecodeError(describe(data)) from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} pixels, above the limit of {max_pixels}")
    if width * height == 0:
        raise ImageDecodeError(f"image is {width}x{height} pixels: empty")
    return image


def _load(image: Image.Image) -> None:
    """Decodes the pixels (of the first frame); truncated or corrupt data is an error, never a partial image."""
    kind = image.format or "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("image decodes to more pixels than allowed") from exc
    except Exception as exc:  # OSError ("image file is truncated", "broken data stream"), ValueError, ...
        raise ImageDecodeError(f"the {kind} data is truncated or corrupt") from exc


SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"heim", b"heis")


def describe(data: bytes) -> str:
    """Why bytes that PIL cannot open are not an image, for the error message."""
    kind = next((kind for signature, kind in SIGNATURES.items() if data.startswith(signature)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
    if kind is not None:
        return f"the {kind} data is truncated or corrupt"
    head = data[:512].lstrip()
    printable = sum(32 <= byte < 127 or byte in b"\t\r\n" for byte in head)
    reasons = (
        (data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS, "HEIC/HEIF photos are not supported; send JPEG or PNG"),
        (head.startswith(b"%PDF"), f"a PDF document is not an image; send {SUPPORTED}"),
        (b"<svg" in head.lower() or head.startswith(b"<?xml"), f"SVG is a vector format; send {SUPPORTED}"),
        (bool(head) and printable >= 0.95 * len(head), f"the bytes are text, not an image ({SUPPORTED})"),
    )
    return next((reason for matched, reason in reasons if matched), f"not an image in a supported format ({SUPPORTED})")


def to_srgb(image: Image.Image) -> Image.Image:
    """Applies an embedded non-sRGB ICC profile (rule 5); other images pass through unchanged."""
    icc = image.info.get("icc_profile")
    if image.mode == "LAB" and SRGB_PROFILE is not None:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    if not icc or SRGB_PROFILE is None or image.mode not in ("RGB", "RGBA", "L", "CMYK", "LAB"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return image  # already sRGB: a round trip through LittleCMS could only move values by rounding
        converted = ImageCms.profileToProfile(
            image,
            source,
            SRGB_PROFILE,
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unreadable profile, or one that does not fit the pixels: taken as sRGB, as browsers do
    assert converted is not None  # profileToProfile returns None only in place
    converted.info = {k: v for k, v in image.info.items() if k != "icc_profile"}
    return converted


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB by rule 6 (scaling) and rule 7 (transparency onto white)."""
    mode = image.mode
    if mode in TRANSPARENT_MODES or "transparency" in image.info:
        return composite_on_white(image.convert("RGBA"))
    if mode == "RGB":
        return image
    if mode in COLOUR_MODES:
        return image.convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(gray_levels(image)).convert("RGB")
    raise ImageDecodeError(f"pixel format {mode} is not supported")


def gray_levels(image: Image.Image) -> np.ndarray:
    """16/32-bit integer or float grayscale -> uint8 levels, scaled (rule 6), never clipped."""
    if image.mode.startswith("I;16") and not image.mode.endswith("S"):
        return _scale_16bit(np.asarray(image))
    if image.mode == "F":
        return _scale_floats(np.asarray(image))
    return _scale_integers(np.asarray(image if image.mode == "I" else image.convert("I")))


def composite_on_white(rgba: Image.Image) -> Image.Image:
    """RGBA -> RGB over a white background, `round((c * a + 255 * (255 - a)) / 255)`; exact, no float rounding."""
    alpha = rgba.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return rgba.convert("RGB")
    pixels = np.asarray(rgba, dtype=np.uint32)
    a = pixels[..., 3:]
    # n / 255 never ends in .5 for an integer n (255 is odd), so (n + 127) // 255 rounds exactly.
    blended = (pixels[..., :3] * a + WHITE * (255 - a) + 127) // 255
    return Image.fromarray(blended.astype(np.uint8))


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 `round(v * 255 / 65535)`; exact in integers (65535 is odd: no ties)."""
    return ((values.astype(np.uint32) * 255 + GRAY16_MAX // 2) // GRAY16_MAX).astype(np.uint8)


def _scale_integers(values: np.ndarray) -> np.ndarray:
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= GRAY16_MAX:
        return _scale_16bit(values)
    return _stretch(values.astype(np.float64), low, high)


def _scale_floats(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ImageDecodeError("float image has NaN or infinite pixels")
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return np.asarray(np.rint(values.astype(np.float64) * 255.0), dtype=np.uint8)
    return _stretch(values.astype(np.float64), low, high)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """[low, high] -> [0, 255], rounded; a constant image is black."""
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return np.asarray(np.rint(scaled), dtype=np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(gray).convert("RGB")
