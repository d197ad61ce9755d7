"""Aligned face crops: a similarity transform (rotation, uniform scale, shift) that takes a
face's five landmarks onto the face-recognition field's canonical 5-point template, applied
to the frame.

The template is ArcFace's (Deng et al. 2019, insightface's ``arcface_dst``), for 112 × 112
crops: the eye on the picture's left, the eye on its right, the nose tip, the mouth's left
and right corners, in the order ``face_detectors.Detection.landmarks`` gives them. For a crop
of ``size`` pixels the template is scaled by size / 112. The transform is the least-squares
similarity over the five points (Umeyama's, as insightface's ``norm_crop`` fits it with
scikit-image), found by ``cv2.estimateAffinePartial2D`` with every point an inlier.

The crop is cut from an RGB frame or from a yuv420p frame's planes (``media.I420Frame``: the
luma and chroma planes are warped on their own grids, so no frame is converted whole). A
face much larger than the crop is first halved (``cv2.pyrDown``, over the part of the frame
the crop covers only) until the warp shrinks it at most 2×, so the crop is not aliased.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# ArcFace's template, 112 × 112 px (insightface: python-package/insightface/utils/face_align.py)
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)


def template(size: int) -> np.ndarray:
    """The template for a crop of ``size`` × ``size`` pixels."""
    return ARCFACE_112 * (size / 112)


def similarity(landmarks, size: int) -> np.ndarray:
    """The 2 × 3 matrix taking the frame's pixels to the crop's, fitted (least squares) from
    five landmarks (x, y) onto ``template(size)``."""
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    # RANSAC with a threshold no point can exceed keeps all five as inliers; the fit is then
    # refined (Levenberg–Marquardt) to the least-squares similarity over all of them.
    matrix, _ = cv2.estimateAffinePartial2D(
        src, template(size), method=cv2.RANSAC, ransacReprojThreshold=1e6, refineIters=50
    )
    if matrix is None:
        raise ValueError("the landmarks do not determine a similarity (all in one place?)")
    return matrix


def _scale(matrix: np.ndarray) -> float:
    return math.sqrt(abs(np.linalg.det(matrix[:, :2])))


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H×W or H×W×C) mapped by ``matrix`` into a size × size crop (bilinear, the
    border replicated), halving the part of the image the crop covers first while the warp
    would shrink it more than 2×."""
    matrix = np.asarray(matrix, np.float64)
    levels = max(0, math.floor(math.log2(1 / max(_scale(matrix), 1e-6))))
    if levels:
        # The crop's corners in the image, a pixel more, and the halving's own reach.
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
        xy = corners @ inverse.T
        pad = 2 ** (levels + 1)
        height, width = image.shape[:2]
        x0 = int(min(max(0, math.floor(xy[:, 0].min()) - pad), width - 1))
        y0 = int(min(max(0, math.floor(xy[:, 1].min()) - pad), height - 1))
        x1 = int(max(min(width, math.ceil(xy[:, 0].max()) + pad), x0 + 1))
        y1 = int(max(min(height, math.ceil(xy[:, 1].max()) + pad), y0 + 1))
        image = image[y0:y1, x0:x1]
        done = 0
        while done < levels and min(image.shape[:2]) >= 4:
            image = cv2.pyrDown(image)
            done += 1
        # pyrDown centres its pixel i on pixel 2i of the image it halves: a pixel i of the
        # cut halved ``done`` times is its pixel 2^done·i, at (x0, y0) + 2^done·i of the frame.
        k = 2**done
        linear = matrix[:, :2]
        shift = linear @ np.array([x0, y0]) + matrix[:, 2]
        matrix = np.hstack([linear * k, shift[:, None]])
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def chroma_matrix(matrix: np.ndarray) -> np.ndarray:
    """The luma grid's matrix for the half-size chroma grids of yuv420p (a chroma pixel c
    covers luma pixels 2c and 2c + 1, its centre at 2c + ½), for a crop half the size."""
    matrix = np.asarray(matrix, np.float64)
    linear = matrix[:, :2]
    shift = (linear @ np.array([0.5, 0.5]) + matrix[:, 2] - 0.5) / 2
    return np.hstack([linear, shift[:, None]])


def warp_planes(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``warp`` of a yuv420p frame's planes: luma size × size, each chroma plane half that."""
    if size % 2:
        raise ValueError(f"a crop of a yuv420p frame needs an even size, got {size}")
    half = chroma_matrix(matrix)
    return warp(y, matrix, size), warp(u, half, size // 2), warp(v, half, size // 2)
