"""write_if_changed (issue #13): a committed screenshot keeps its bytes when the picture is the
same, and is rewritten when it changed. No browser: pictures drawn with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from tests.frontend.screenshot_files import Box, changed_pixels, write_if_changed


def _png(pixels: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG", **save)
    return buf.getvalue()


def _screen(w: int = 40, h: int = 30) -> np.ndarray:
    """A small "screen": white, with a dark "word" at (5..15, 5..10)."""
    px = np.full((h, w, 3), 255, dtype=np.int16)
    px[5:10, 5:15] = (20, 30, 40)
    return px


def _committed(tmp_path: Path, **save: object) -> tuple[Path, bytes]:
    """A committed screenshot of ``_screen()`` at ``tmp_path / "s.png"``.

    Parameters
    ----------
    tmp_path
        The test's folder.
    **save
        Pillow's PNG options, to encode the same pixels into other bytes.

    Returns
    -------
    tuple[Path, bytes]
        The file and the bytes written to it, which a kept file must still hold.
    """
    path = tmp_path / "s.png"
    committed = _png(_screen(), **save)
    path.write_bytes(committed)
    return path, committed


def test_same_picture_encoded_differently_keeps_the_committed_bytes(tmp_path: Path) -> None:
    path, committed = _committed(tmp_path, compress_level=1)
    # The same pixels, other bytes (another compression and a text chunk): not a change.
    again = _png(_screen(), compress_level=9, pnginfo=_info("Software", "other encoder"))
    assert again != committed
    assert write_if_changed(path, again) is False
    assert path.read_bytes() == committed


def test_noise_within_the_tolerance_keeps_the_bytes(tmp_path: Path) -> None:
    path, committed = _committed(tmp_path)
    noisy = _screen()
    noisy[7, 7] += (8, -8, 3)  # an anti-aliased edge a shade off
    assert write_if_changed(path, _png(noisy)) is False
    assert path.read_bytes() == committed


def test_a_changed_pixel_is_written(tmp_path: Path) -> None:
    path, _ = _committed(tmp_path)
    changed = _screen()
    changed[20, 30] = (0, 0, 0)  # one dark pixel on white: a visible change
    new = _png(changed)
    assert write_if_changed(path, new) is True
    assert path.read_bytes() == new
    assert not list(tmp_path.glob("*.tmp"))


def test_a_changed_size_is_written(tmp_path: Path) -> None:
    path, _ = _committed(tmp_path)
    new = _png(_screen(h=31))
    assert changed_pixels(new, path.read_bytes()) is None
    assert write_if_changed(path, new) is True
    assert path.read_bytes() == new


def test_a_change_inside_a_volatile_box_is_not_written(tmp_path: Path) -> None:
    path, committed = _committed(tmp_path)
    clock = _screen()
    clock[20:25, 10:30] = (0, 0, 0)  # "11:44" became "09:22"
    new = _png(clock)
    # The box has fractional edges, as an element's box does: the pixels it touches are out.
    assert write_if_changed(path, new, ignore=[Box(9.6, 19.5, 20.2, 5.1)]) is False
    assert path.read_bytes() == committed
    # A box that misses part of the change: written.
    assert write_if_changed(path, new, ignore=[Box(10, 20, 10, 5)]) is True
    assert path.read_bytes() == new


def test_missing_or_unreadable_committed_file_is_written(tmp_path: Path) -> None:
    new = _png(_screen())
    missing = tmp_path / "sub" / "new.png"
    assert write_if_changed(missing, new) is True
    assert missing.read_bytes() == new
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"<<<<<<< HEAD\nnot a png\n")
    assert write_if_changed(broken, new) is True
    assert broken.read_bytes() == new


def test_a_new_shot_that_is_not_an_image_writes_nothing(tmp_path: Path) -> None:
    path, committed = _committed(tmp_path)
    with pytest.raises(UnidentifiedImageError):
        write_if_changed(path, b"not a png")
    assert path.read_bytes() == committed


def test_rgb_and_rgba_of_the_same_picture_are_the_same() -> None:
    rgb = _screen()
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, dtype=np.int16)], axis=2)
    assert changed_pixels(_png(rgb), _png(rgba)) == 0


def _info(key: str, value: str) -> object:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(key, value)
    return info
