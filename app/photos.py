"""Photos on disk: the original as uploaded, and the copies that are served.

The original is kept byte for byte: its sha256 is on the signed ledger. It may carry
EXIF with the phone's GPS position, its make and serial, and the owner's name, so it is
never served. What is served is a re-encoded JPEG without EXIF, XMP or any other
metadata (the colour profile aside), turned upright first, since the orientation tag
goes with the EXIF, and a thumbnail of it. Both live next to the original
(`<sha256>.jpg`, `<sha256>.thumb.jpg`), are made at upload, and again on the first read
when missing (photos uploaded before they existed, a restored media folder).

The EXIF time and place are read once, at upload, and kept on the `attachment` row.

Every function here touches files or decodes images: call them in a thread.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pillow_heif
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from grid import people_time
from grid.cases.exceptions import AttachmentTooLarge, AttachmentUndecodable

pillow_heif.register_heif_opener()

ALLOWED_IMAGES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
HEIC_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc")
# Pillow's formats for each accepted type: a file is decoded only as what its bytes say.
_FORMATS = {"image/jpeg": ["JPEG"], "image/png": ["PNG"], "image/heic": ["HEIF"]}

# A 200-megapixel phone camera is the largest a report should bring; past that a small
# file that decompresses to gigabytes (a "decompression bomb") is refused before decoding.
MAX_PIXELS = 200_000_000
THUMBNAIL_SIDE = 320
PHOTO_QUALITY = 90
THUMBNAIL_QUALITY = 80


Variant = Literal["photo", "thumbnail"]
SERVED_TYPE = "image/jpeg"


def sniff_image(head: bytes) -> str | None:
    """The type from the bytes themselves, not from what the client claims."""
    for magic, kind in ALLOWED_IMAGES.items():
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "image/heic"
    return None


@dataclass(frozen=True)
class Taken:
    """When and where the photo says it was taken (EXIF); None where it does not say."""

    at: datetime | None = None
    lon: float | None = None
    lat: float | None = None


def original_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


def served_path(original: Path, variant: Variant) -> Path:
    return original.with_name(original.name + (".jpg" if variant == "photo" else ".thumb.jpg"))


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)  # never a half-written file under its final name


def _open(source: Path | bytes, kind: str) -> Image.Image:
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(fp, formats=_FORMATS[kind])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise AttachmentUndecodable("照片无法解码：文件可能已损坏，请重新拍摄或换一张照片后再上传") from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise AttachmentTooLarge(
            f"照片有 {width}×{height} 像素，超过上限 {MAX_PIXELS // 1_000_000} 百万像素；请缩小后再上传",
            width=width, height=height, max_pixels=MAX_PIXELS,
        )  # fmt: skip
    return image


def read_taken(data: bytes, kind: str) -> Taken:
    """The EXIF time (DateTimeOriginal, with OffsetTimeOriginal when given) and GPS position
    (decimal degrees; EXIF GPS is WGS-84). Refuses a file that does not open as `kind`."""
    with _open(data, kind) as image:
        try:
            exif = image.getexif()
        except (ValueError, TypeError, OSError, SyntaxError, LookupError):
            return Taken()  # unreadable EXIF: the photo is still a photo
        return Taken(_taken_at(exif), *_taken_place(exif))


def _taken_at(exif: Image.Exif) -> datetime | None:
    try:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        text = str(ifd.get(ExifTags.Base.DateTimeOriginal, "")).strip("\x00 ")
        at = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except (ValueError, TypeError, OSError, LookupError):
        return None
    offset = _offset(ifd.get(ExifTags.Base.OffsetTimeOriginal))
    at = (
        at.replace(tzinfo=offset) if offset else at.replace(tzinfo=people_time.county_zone())
    )  # no offset: the county's clock
    return at if 1900 <= at.year <= 2100 else None


def _offset(value: Any) -> timezone | None:
    """'+08:00' as a time zone; None when absent or malformed."""
    text = str(value or "").strip("\x00 ")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[4:])
    if minutes > 14 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))


def _taken_place(exif: Image.Exif) -> tuple[float | None, float | None]:
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        lat = _degrees(gps[ExifTags.GPS.GPSLatitude], gps.get(ExifTags.GPS.GPSLatitudeRef), "S")
        lon = _degrees(gps[ExifTags.GPS.GPSLongitude], gps.get(ExifTags.GPS.GPSLongitudeRef), "W")
    except (ValueError, TypeError, OSError, LookupError, ArithmeticError):
        return None, None
    # Out of range, NaN (a zero denominator), or 0/0, which cameras write without a fix.
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None, None
    return round(lon, 7), round(lat, 7)


def _degrees(dms: Any, ref: Any, negative: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    return -value if str(ref or "").strip("\x00 ").upper() == negative else value


def _clean(image: Image.Image) -> Image.Image:
    """Upright, in RGB, with no metadata but the colour profile."""
    icc = image.info.get("icc_profile")
    upright = ImageOps.exif_transpose(image)
    if upright.mode not in ("RGB", "L"):
        # Transparency over white, as the photo would be seen on a page.
        rgba = upright.convert("RGBA")
        upright = Image.new("RGB", rgba.size, (255, 255, 255))
        upright.paste(rgba, mask=rgba.getchannel("A"))
    # A new image carries nothing of the old one's EXIF, XMP, comments or text chunks.
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    if icc:
        clean.info["icc_profile"] = icc
    return clean


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, icc_profile=image.info.get("icc_profile"))
    return out.getvalue()


def make_served(original: Path, kind: str) -> None:
    """The served photo and its thumbnail, from the original (EXIF and XMP left out)."""
    with _open(original, kind) as image:
        clean = _clean(image)
    _write_atomically(served_path(original, "photo"), _jpeg(clean, PHOTO_QUALITY))
    clean.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    _write_atomically(served_path(original, "thumbnail"), _jpeg(clean, THUMBNAIL_QUALITY))


def store_raw(data: bytes, media_dir: Path) -> tuple[str, Path]:
    """A file kept byte for byte under its sha256, with no served copies: a signed
    agreement's scan, which is a record to keep, not a photo to show."""
    digest = hashlib.sha256(data).hexdigest()
    path = original_path(media_dir, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _write_atomically(path, data)
    return digest, path


def store(data: bytes, media_dir: Path, kind: str) -> tuple[str, Path, Taken]:
    """Keep the upload under its sha256 (as uploaded), make its served copies, read its
    EXIF time and place. Refuses (AttachmentRefused, AttachmentTooLarge) what will not
    decode as `kind`, before anything is written."""
    taken = read_taken(data, kind)
    digest = hashlib.sha256(data).hexdigest()
    path = original_path(media_dir, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _write_atomically(path, data)
    if not (served_path(path, "photo").exists() and served_path(path, "thumbnail").exists()):
        make_served(path, kind)
    return digest, path, taken


def served(original: Path, kind: str, variant: Variant) -> Path | None:
    """The file to send for `variant`, made now if missing; None if the original is gone."""
    path = served_path(original, variant)
    if not path.exists():
        if not original.exists():
            return None
        make_served(original, kind)
    return path
