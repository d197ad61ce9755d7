"""Generated movies: frames that carry their own number, and drawn-face movies for the demo.

``numbered_frames`` paints each frame's index as a grid of black and white cells, large enough
to survive H.264 compression and scaling, and ``frame_numbers`` reads them back, so a test or a
benchmark can check that a clip holds exactly the source frames it should.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.synthetic import EXPRESSIONS, _blend, random_style, render_face

BITS_ROWS, BITS_COLS = 2, 6  # 12 bits: frame numbers up to 4,095


def numbered_frames(n: int, width: int = 64, height: int = 48, first: int = 0) -> np.ndarray:
    """n frames (n×height×width×3 uint8); frame i shows the number ``first + i`` in binary."""
    if first + n > 2 ** (BITS_ROWS * BITS_COLS):
        raise ValueError(f"at most {2 ** (BITS_ROWS * BITS_COLS)} numbered frames")
    frames = np.zeros((n, height, width, 3), np.uint8)
    cell_h, cell_w = height // BITS_ROWS, width // BITS_COLS
    for i in range(n):
        number = first + i
        for bit in range(BITS_ROWS * BITS_COLS):
            if number >> bit & 1:
                r, c = divmod(bit, BITS_COLS)
                frames[i, r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w] = 255
    return frames


def frame_numbers(frames: np.ndarray) -> list[int]:
    """The numbers painted by `numbered_frames`, read from the centre of each cell."""
    _, height, width, _ = frames.shape
    cell_h, cell_w = height // BITS_ROWS, width // BITS_COLS
    numbers = []
    for frame in frames:
        grey = frame.mean(axis=2)
        number = 0
        for bit in range(BITS_ROWS * BITS_COLS):
            r, c = divmod(bit, BITS_COLS)
            cell = grey[
                r * cell_h + cell_h // 4 : (r + 1) * cell_h - cell_h // 4,
                c * cell_w + cell_w // 4 : (c + 1) * cell_w - cell_w // 4,
            ]
            if cell.mean() > 128:
                number |= 1 << bit
        numbers.append(number)
    return numbers


def drawn_face_movie(
    emotions: Sequence[str],
    seconds_each: float,
    fps: float,
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One face whose expression changes over time: each segment of ``seconds_each`` rises
    from neutral to one emotion's apex and back, then the next segment begins."""
    style = random_style(rng, size)
    per = max(2, round(seconds_each * fps))
    frames = np.empty((per * len(emotions), size, size, 3), np.uint8)
    for s, emotion in enumerate(emotions):
        apex = EXPRESSIONS[emotion]
        for i in range(per):
            phase = i / (per - 1)
            intensity = min(1.0, 2.5 * min(phase, 1 - phase) + 0.2)
            t = (s * per + i) / len(frames)
            frame = np.asarray(render_face(_blend(apex, intensity), style, size, t), np.float32)
            frame += rng.normal(0.0, style.noise, frame.shape)
            frames[s * per + i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames
