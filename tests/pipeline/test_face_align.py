"""Aligned crops (pipeline.face_align): the least-squares similarity onto ArcFace's template,
and the warp of RGB frames and of yuv420p planes."""

import cv2
import numpy as np
import pytest

from pipeline import face_align


@pytest.mark.parametrize("size", [48, 112])
def test_the_similarity_is_umeyamas_least_squares_fit(size):
    # scikit-image's SimilarityTransform (Umeyama 1991) is what insightface's norm_crop fits.
    transform = pytest.importorskip("skimage.transform").SimilarityTransform
    rng = np.random.default_rng(4)
    points = face_align.ARCFACE_112 * 2.3 + [300, 120] + rng.normal(0, 3, (5, 2))
    dst = face_align.template(size)
    if hasattr(transform, "from_estimate"):  # scikit-image 0.26
        theirs = transform.from_estimate(points, dst)
    else:
        theirs = transform()
        theirs.estimate(points, dst)
    assert np.allclose(face_align.similarity(points, size), theirs.params[:2], atol=1e-3)


def test_landmarks_that_are_the_template_moved_land_on_it_exactly():
    angle, scale, shift = np.deg2rad(20), 3.0, np.array([400.0, 150.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = face_align.ARCFACE_112 @ rotation.T + shift
    matrix = face_align.similarity(points, 112)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - face_align.ARCFACE_112).max() < 1e-3


def test_a_large_face_is_halved_first_and_lands_where_a_direct_warp_puts_it():
    # A 1000 px checkerboard with a dot, shrunk 8×: the halvings keep the dot's place
    # (within a pixel) and average the one-pixel checks to grey, where a direct warp
    # samples one colour of them (aliasing).
    image = np.indices((1000, 1000)).sum(axis=0) % 2 * 255
    image = np.repeat(image[..., None], 3, axis=2).astype(np.uint8)
    cv2.circle(image, (500, 400), 24, (255, 0, 0), -1)
    matrix = np.array([[0.125, 0, -10.0], [0, 0.125, 0.0]])
    ours = face_align.warp(image, matrix, 112)
    direct = cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR)
    red = lambda img: (img[..., 0].astype(int) - img[..., 1]) > 100  # noqa: E731
    ys, xs = np.nonzero(red(ours))
    assert abs(xs.mean() - (500 * 0.125 - 10)) <= 1 and abs(ys.mean() - 50) <= 1
    checks = ~red(ours) & ~red(direct)
    assert abs(ours[checks].mean() - 127.5) < 8 and ours[checks].std() < 8
    assert abs(direct[checks].mean() - 127.5) > 100


def test_planes_are_warped_as_the_rgb_frame_is():
    rng = np.random.default_rng(1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    y, u, v = yuv[:240], yuv[240:].reshape(-1)[: 120 * 160], yuv[240:].reshape(-1)[120 * 160 :]
    matrix = face_align.similarity(face_align.ARCFACE_112 * 1.5 + [60, 30], 64)
    planes = face_align.warp_planes(y, u.reshape(120, 160), v.reshape(120, 160), matrix, 64)
    from pipeline.face_sheets import i420

    from_planes = cv2.cvtColor(i420(*planes), cv2.COLOR_YUV2RGB_I420).astype(int)
    direct = face_align.warp(rgb, matrix, 64).astype(int)
    assert np.abs(from_planes - direct).mean() < 4
