"""Images in requests: data URLs decoded and checked to be whole PNG, JPEG, WebP or GIF files."""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zlib
from dataclasses import dataclass

from .reasons import Rejected

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_DATA_URL = re.compile(r"^data:(image/[a-z]+);base64,(.*)$", re.DOTALL)
# The formats the images and vision guide lists for image inputs (non-animated GIF included).
MEDIA_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP",
               "image/gif": "GIF"}


@dataclass(frozen=True)
class Image:
    """An image a request carried: its bytes and size when it came as a data URL."""

    data: bytes | None  # None: an http(s) URL or a file_id, which the stand-in takes on trust
    size: tuple[int, int] | None
    media_type: str | None


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a complete PNG (signature, IHDR with a good CRC, IEND), else None."""
    if len(data) < 45 or not data.startswith(_PNG_SIGNATURE) or not data.endswith(_PNG_END):
        return None
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        return None
    width, height = struct.unpack(">II", data[16:24])
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc or not width or not height:
        return None
    return width, height


def _whole_file(data: bytes, fmt: str) -> bool:
    """Cheap checks that the file was not cut short, which Pillow's lazy open does not make."""
    if fmt == "JPEG":
        return data.startswith(b"\xff\xd8") and data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "WEBP":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP" and struct.unpack("<I", data[4:8])[0] + 8 == len(data)
    if fmt == "GIF":
        return data[:6] in (b"GIF87a", b"GIF89a") and data.endswith(b";")
    return False


def _decoded_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    if fmt == "PNG":
        return png_size(data)
    if len(data) < 16 or not _whole_file(data, fmt):
        return None
    from PIL import Image as PILImage  # Pillow is a dependency of cua; imported late, tests only

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            if img.format != fmt:
                return None
            img.load()
            return img.size
    except Exception:  # any decoder complaint means "not a valid image of this format"
        return None


def image_from_url(url: object, param: str) -> Image:
    """Check an ``image_url``: a data URL must hold a whole image of the type it declares."""
    if not isinstance(url, str) or not url:
        raise Rejected("image_not_data_url", param=param)
    if url.startswith(("https://", "http://")):
        return Image(None, None, None)  # the service fetches it; the stand-in cannot look
    match = _DATA_URL.match(url)
    if match is None or match.group(1) not in MEDIA_TYPES:
        raise Rejected("image_not_data_url", param=param)
    media_type, payload = match.groups()
    fmt = MEDIA_TYPES[media_type]
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("image_not_decodable", param=param, format=fmt) from None
    size = _decoded_size(data, fmt)
    if size is None:
        # A mislabeled image is refused too: the service's behaviour there is not documented.
        raise Rejected("image_not_decodable", param=param, format=fmt)
    if fmt == "GIF" and _frames(data) > 1:
        raise Rejected("image_animated", param=param)
    return Image(data, size, media_type)


def _frames(data: bytes) -> int:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        return getattr(img, "n_frames", 1)
