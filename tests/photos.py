"""Photos made on the spot for the tests: a JPEG carrying GPS EXIF and XMP as a phone
writes them, a HEIC, a plain PNG."""

from __future__ import annotations

import io

from PIL import ExifTags, Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

XMP_MARK = b"http://ns.adobe.com/xap/1.0/"


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(s * 10_000), 10_000)


def exif(*, lon: float | None = None, lat: float | None = None, taken: str | None = None,
         offset: str | None = None) -> Image.Exif:  # fmt: skip
    """EXIF as a phone camera writes it: make, model and serial, the time, the GPS fix."""
    e = Image.Exif()
    e[ExifTags.Base.Make] = "TestPhone"
    e[ExifTags.Base.Model] = "X1"
    e[ExifTags.Base.Artist] = "张三"
    sub: dict[int, object] = {ExifTags.Base.BodySerialNumber: "SN-0042"}
    if taken:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    e[ExifTags.IFD.Exif] = sub
    if lon is not None and lat is not None:
        e[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S", ExifTags.GPS.GPSLatitude: _dms(lat),
            ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W", ExifTags.GPS.GPSLongitude: _dms(lon),
        }  # fmt: skip
    return e


def picture(size: tuple[int, int] = (800, 600), colour: tuple[int, int, int] = (40, 120, 200)) -> Image.Image:
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(250, 200, 0))
    return img


def with_xmp(jpeg: bytes) -> bytes:
    """The JPEG with an XMP packet (APP1) after its start marker, as phone galleries add."""
    packet = (
        XMP_MARK
        + b"\x00"
        + b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>37,46.7N</exif:GPSLatitude></x:xmpmeta>'
    )
    return jpeg[:2] + b"\xff\xe1" + (len(packet) + 2).to_bytes(2, "big") + packet + jpeg[2:]


def jpeg(*, lon: float | None = None, lat: float | None = None, taken: str | None = None, offset: str | None = None,
         size: tuple[int, int] = (800, 600), colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:  # fmt: skip
    out = io.BytesIO()
    picture(size, colour).save(out, "JPEG", exif=exif(lon=lon, lat=lat, taken=taken, offset=offset))
    return with_xmp(out.getvalue())


def heic(*, lon: float | None = None, lat: float | None = None, taken: str | None = None,
         size: tuple[int, int] = (800, 600)) -> bytes:  # fmt: skip
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    picture(size, (200, 60, 60)).save(out, "HEIF", exif=exif(lon=lon, lat=lat, taken=taken))
    return out.getvalue()


def png(colour: tuple[int, int, int] = (200, 0, 0), size: tuple[int, int] = (16, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()
