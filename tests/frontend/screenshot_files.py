"""Committed screenshots that a test run rewrites only when the screen really changed.

The browser tests write ``tests/frontend/screenshots/*.png`` for reviewers (issue #13), and
those files are committed. A run that changes nothing visible must leave them byte-identical,
or every run leaves the work tree dirty and the history fills with screenshots of nothing.

:func:`write_if_changed` decodes the new and the committed PNG and writes the new bytes only if
their pixels differ beyond a tiny tolerance, outside the regions the caller names as volatile
(content that follows the clock or a random id: a date field, an ETA, a generated e-mail), so
the committed file keeps its old bytes otherwise. Pixels are compared, not bytes: the same
picture may be encoded differently, and a changed picture always differs in its pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image  # pinned in constraints.txt (pyvrp -> matplotlib -> pillow)

# A channel off by at most this much is rendering noise (anti-aliasing of a glyph edge), not a
# change anyone would see; a changed word or colour moves channels by far more.
CHANNEL_TOLERANCE = 8
# Pixels beyond the channel tolerance that still count as "the same picture": none. A one-digit
# change of a small label alters a few dozen pixels, so any allowance here would hide it.
MAX_CHANGED_PIXELS = 0


class Box(NamedTuple):
    """A rectangle of the image in pixels (left, top, width, height), e.g. an element's box."""

    x: float
    y: float
    width: float
    height: float


def _pixels(png: bytes) -> np.ndarray:
    """The PNG's pixels as an ``(h, w, 4)`` int16 array (RGBA, so any colour type compares)."""
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGBA"), dtype=np.int16)


def changed_pixels(
    new: bytes,
    old: bytes,
    ignore: Sequence[Box] = (),
    channel_tolerance: int = CHANNEL_TOLERANCE,
) -> int | None:
    """How many pixels of ``new`` differ from ``old`` by more than ``channel_tolerance`` in any
    channel, the ``ignore`` boxes left out; ``None`` if the two sizes differ (a change of
    layout, always a change).

    Raises
    ------
    PIL.UnidentifiedImageError
        If either is not an image.
    """
    a, b = _pixels(new), _pixels(old)
    if a.shape != b.shape:
        return None
    over = np.abs(a - b).max(axis=2) > channel_tolerance
    h, w = over.shape
    for box in ignore:
        # Whole pixels covering the box (an element's box has fractional edges).
        x0, y0 = max(0, int(np.floor(box.x))), max(0, int(np.floor(box.y)))
        x1 = min(w, int(np.ceil(box.x + box.width)))
        y1 = min(h, int(np.ceil(box.y + box.height)))
        if x1 > x0 and y1 > y0:
            over[y0:y1, x0:x1] = False
    return int(over.sum())


def write_if_changed(
    path: Path,
    png: bytes,
    ignore: Sequence[Box] = (),
    channel_tolerance: int = CHANNEL_TOLERANCE,
    max_changed_pixels: int = MAX_CHANGED_PIXELS,
) -> bool:
    """Write ``png`` to ``path`` unless the file there shows the same picture; True if written.

    The same picture: the same size, and at most ``max_changed_pixels`` pixels off by more than
    ``channel_tolerance`` outside the ``ignore`` boxes. A missing file, or one that is not a
    readable image (a merge conflict, a truncated write), is replaced.

    Raises
    ------
    PIL.UnidentifiedImageError
        If ``png`` itself is not an image (nothing is written then).
    """
    _pixels(png)  # the new shot must be an image, whatever is on disk
    if path.is_file():
        old = path.read_bytes()
        try:
            n = changed_pixels(png, old, ignore, channel_tolerance)
        except (OSError, ValueError):  # the committed file is not a readable PNG: replace it
            n = None
        if n is not None and n <= max_changed_pixels:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)  # never a half-written PNG in the folder the README names
    return True
