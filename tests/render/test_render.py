"""``slahmr-opt render``: a tiny hand-made result rendered through pyrender + OSMesa.

The result (default body model, T = 4 frames, 160 x 120 images) has a camera 4 m behind two
people on a y-up floor; person 1 is absent from frame 0. Renders are 320 px wide (two 160 x 120
panels) and read back from the mp4. If OSMesa or pyrender is missing these tests fail with the
install line: the Makefile installs both.
"""

import argparse
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from slahmr_opt.cli import main
from slahmr_opt.cli.common import parse_frames
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.video import FrameReader, Mp4Writer, read_video_frames
from slahmr_opt.io.bodies import camera_arrays, intrinsics, posed, result_body_model
from slahmr_opt.io.results import read_result
from slahmr_opt.render import scene
from slahmr_opt.render.render import (
    OVERLAY_BACKGROUND,
    RenderOptions,
    panel_size,
    render_result,
    select_frames,
)

T, H, W = 4, 120, 160
INTRINS = np.array([150.0, 150.0, 80.0, 60.0])
TRANS = np.array([[0.0, 1.0, 0.0], [2.2, 1.0, 1.5]])  # two people, metres


#: Tests that draw need pyrender (the [render] extra; the Makefile installs it).
needs_renderer = pytest.mark.skipif(
    importlib.util.find_spec("pyrender") is None, reason="the renderer (pyrender) is not installed"
)


def write_tiny_result(path, frame_offset: int = 0, static: bool = False, floor: bool = True):
    """A results.npz: camera at (0.1 t, 1, -4) looking along +z (OpenCV: x = -x_w, y = -y_w).

    ``static``: the camera stays at (0, 1, -4); ``floor=False``: no floor was estimated.
    """
    R = np.diag([-1.0, -1.0, 1.0])
    centres = np.stack([0.1 * np.arange(T) * (not static), np.ones(T), -4.0 * np.ones(T)], 1)
    cam_t = -centres @ R.T
    mask = np.ones((2, T), bool)
    mask[1, 0] = False
    np.savez(
        path,
        trans=np.repeat(TRANS[:, None], T, 1).astype(np.float32),
        root_orient=np.zeros((2, T, 3), np.float32),
        pose_body=np.zeros((2, T, 63), np.float32),
        betas=np.zeros((2, 10), np.float32),
        cam_R=np.broadcast_to(R, (2, T, 3, 3)).astype(np.float32),
        cam_t=np.broadcast_to(cam_t, (2, T, 3)).astype(np.float32),
        intrins=np.tile(INTRINS, (T, 1)).astype(np.float32),
        track_mask=mask,
        track_ids=np.array(["a", "b"]),
        fps=np.array(30.0),
        image_size=np.array([H, W]),
        frame_offset=np.array(frame_offset),
        world_transform=np.eye(4, dtype=np.float32),
        floor_plane=np.array([0.0, 1.0, 0.0, 0.0] if floor else [np.nan] * 4, np.float32),
    )
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_result(tmp_path_factory.mktemp("tiny") / "results.npz")


def _load(path):
    """The result of ``path`` and its body model."""
    result = read_result(path)
    return result, result_body_model(result, source=path)


@pytest.fixture(scope="module")
def loaded(tiny):
    return _load(tiny)


def _render(loaded, out, reader=None, **kw):
    kw.setdefault("width", 2 * W)
    kw.setdefault("labels", False)
    return render_result(*loaded, out, reader, RenderOptions(progress=False, **kw))


def _project(loaded, t: int) -> np.ndarray:
    """(P, V, 2) pixel positions of every vertex at frame ``t``."""
    result, model = loaded
    verts, _ = posed(result, model, np.array([t]))
    R_w2c, t_w2c = camera_arrays(result)
    cam = verts[:, 0] @ R_w2c[t].T + t_w2c[t]
    fx, fy, cx, cy = intrinsics(result)[t]
    return np.stack([fx * cam[..., 0] / cam[..., 2] + cx, fy * cam[..., 1] / cam[..., 2] + cy], -1)


def _blue(img):  # person 0's hue, however shaded
    r, g, b = np.moveaxis(img.astype(int), -1, 0)
    return (b > r + 30) & (b > g)


def _orange(img):  # person 1's (and the frustum's) hue
    r, g, b = np.moveaxis(img.astype(int), -1, 0)
    return (r > b + 30) & (r > g)


@pytest.fixture(scope="module")
def plain_video(loaded, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "render.mp4"
    report = _render(loaded, out)
    frames, fps = read_video_frames(out)
    return report, frames, fps


@needs_renderer
def test_mp4_frames_size_fps(plain_video):
    report, frames, fps = plain_video
    assert frames.shape == (T, H, 2 * W, 3)
    assert report.num_frames == T and report.size == (H, 2 * W)
    assert fps == pytest.approx(30.0)


def _check_person(left, uv, background, is_colour) -> np.ndarray:
    """Assert the drawn pixels of one person match its (V, 2) projected vertices ``uv``.

    Shape is judged on brightness (full resolution in the mp4), colour near the body centre
    (yuv420p halves the colour resolution, so thin arms lose their hue). Returns the person's
    box (H, W) bool, 2 px wider than the projected vertices.
    """
    drawn = np.abs(left.astype(int) - background).max(-1) > 40
    u, v = np.round(uv).astype(int).T
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    assert inside.mean() > 0.99
    assert drawn[v[inside], u[inside]].mean() > 0.7
    assert binary_dilation(drawn)[v[inside], u[inside]].mean() > 0.97  # fingers < 1 px
    lo, hi = uv.min(0), uv.max(0)
    box = np.zeros_like(drawn)
    box[max(int(lo[1]) - 2, 0) : int(hi[1]) + 3, max(int(lo[0]) - 2, 0) : int(hi[0]) + 3] = 1
    ys, xs = np.nonzero(drawn & box)
    assert np.allclose([xs.min(), ys.min(), xs.max(), ys.max()], [*lo, *hi], atol=3)
    centre = np.median(uv, 0)
    torso = np.abs(uv - centre).max(1) < 5  # the rest pose is left-right symmetric here
    rows = slice(int(centre[1]) - 4, int(centre[1]) + 5)
    cols = slice(int(centre[0]) - 12, int(centre[0]) + 13)
    band_x = np.nonzero(drawn[rows, cols])[1] + cols.start
    assert band_x.mean() == pytest.approx(uv[torso, 0].mean(), abs=0.75)
    tu, tv = np.round(uv[torso]).astype(int).T
    assert is_colour(left)[tv, tu].mean() > 0.8  # pixels at the outline blend in the mp4
    return box


@needs_renderer
def test_overlay_silhouette_matches_projected_mesh(plain_video, loaded):
    _, frames, _ = plain_video
    background = np.round(255 * np.array(OVERLAY_BACKGROUND))
    for t in range(T):
        left = frames[t, :, :W]
        uv = _project(loaded, t)
        allowed = np.zeros((H, W), bool)
        for p, is_colour in ((0, _blue), (1, _orange)):
            if loaded[0].track_mask[p, t]:
                allowed |= _check_person(left, uv[p], background, is_colour)
            else:
                assert is_colour(left).sum() < 5, "a person absent from this frame is drawn"
        drawn = np.abs(left.astype(int) - background).max(-1) > 40
        assert (drawn & ~allowed).sum() < 3, "drawn pixels outside the projected meshes"


def _check_world_view(right: np.ndarray, min_floor: float) -> None:
    right = right.astype(int)
    grey = (np.ptp(right, axis=-1) < 8) & (right[..., 0] > 60) & (right[..., 0] < 240)
    levels = np.unique(right[..., 0][grey] // 16)
    assert grey.mean() > min_floor, "the floor should fill much of the world view"
    assert len(levels) >= 2, "expected the two checkerboard greys"
    assert _blue(right).sum() > 10 and _orange(right).sum() > 10  # person 0; person 1 or frustum


@needs_renderer
def test_world_view_shows_floor_people_camera(plain_video):
    _, frames, _ = plain_video
    _check_world_view(frames[1, :, W:], 0.5)


@needs_renderer
def test_static_camera_without_floor(tmp_path):
    path = write_tiny_result(tmp_path / "results.npz", static=True, floor=False)
    _render(_load(path), tmp_path / "out.mp4", frames=slice(1, 3))
    frames, _ = read_video_frames(tmp_path / "out.mp4")
    assert frames.shape == (2, H, 2 * W, 3)
    _check_world_view(frames[0, :, W:], 0.5)


def _level_frames(n: int) -> list[np.ndarray]:
    """Frames whose grey level says their index: 30 + 40 i."""
    return [np.full((H, W, 3), 30 + 40 * i, np.uint8) for i in range(n)]


def _corner_level(frames, t: int) -> float:
    return float(frames[t, 2:10, 2:20].mean())  # top left of the overlay panel: nobody there


@needs_renderer
def test_images_input_with_frame_offset(tmp_path):
    loaded = _load(write_tiny_result(tmp_path / "results.npz", frame_offset=1))
    folder = tmp_path / "images"
    folder.mkdir()
    for i, frame in enumerate(_level_frames(T + 1)):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    _render(loaded, tmp_path / "out.mp4", FrameReader(images=folder))
    frames, _ = read_video_frames(tmp_path / "out.mp4")
    for t in range(T):
        assert _corner_level(frames, t) == pytest.approx(30 + 40 * (t + 1), abs=4)


@needs_renderer
def test_video_input_larger_frames_and_step(tmp_path, loaded):
    video = tmp_path / "in.mp4"
    with Mp4Writer(video, (2 * H, 2 * W), 30) as w:  # twice the fitted size, same aspect
        for frame in _level_frames(T):
            w.write(np.asarray(Image.fromarray(frame).resize((2 * W, 2 * H))))
        w.commit()
    reader = FrameReader(video=video)
    report = _render(loaded, tmp_path / "out.mp4", reader, frames=slice(0, 4, 2), view="side")
    frames, fps = read_video_frames(tmp_path / "out.mp4")
    assert report.num_frames == 2 and len(frames) == 2 and fps == pytest.approx(15.0)
    assert _corner_level(frames, 1) == pytest.approx(30 + 40 * 2, abs=4)
    _check_person(frames[1, :, :W], _project(loaded, 2)[0], 30 + 40 * 2, _blue)
    _check_world_view(frames[1, :, W:], 0.25)


def _cli(*argv):
    return main(["render", *map(str, argv)])


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@needs_renderer
def test_cli_renders_and_refuses_to_overwrite(tiny, tmp_path, capsys):
    out = tmp_path / "r.mp4"
    assert (
        _cli("--results", tiny, "--out", out, "--width", 2 * W, "--frames", "1:3", "--quiet") == 0
    )
    assert "2 frames, 320x120" in capsys.readouterr().out
    stamp = out.stat().st_mtime_ns
    assert _cli("--results", tiny, "--out", out, "--quiet") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp
    args = ("--results", tiny, "--out", out, "--width", 2 * W, "--frames", "0", "--quiet")
    assert _cli(*args, "--overwrite") == 0
    assert len(read_video_frames(out)[0]) == 1


@needs_renderer
@pytest.mark.parametrize("problem", ["not_a_video", "short_video", "bad_image", "few_images"])
def test_cli_bad_frames_exit_2_without_output(problem, tiny, tmp_path, capsys):
    if problem == "not_a_video":
        src = tmp_path / "clip.mp4"
        src.write_text("not a video")
        flag = "--video"
    elif problem == "short_video":
        src = tmp_path / "clip.mp4"
        with Mp4Writer(src, (H, W), 30) as w:
            for frame in _level_frames(2):
                w.write(frame)
            w.commit()
        flag = "--video"
    else:
        src = tmp_path / "frames"
        src.mkdir()
        for i, frame in enumerate(_level_frames(T if problem == "bad_image" else 2)):
            Image.fromarray(frame).save(src / f"{i:03d}.png")
        if problem == "bad_image":
            (src / "002.png").write_bytes(b"\x89PNG broken")
        flag = "--images"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = _cli("--results", tiny, flag, src, "--out", out_dir / "r.mp4", "--width", 2 * W, "--quiet")
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("slahmr-opt: error: ") and err.count("\n") == 1
    assert str(src) in err
    assert list(out_dir.iterdir()) == [], "no output (or temporary file) may be left"
    expected = {"not_a_video": "cannot read as a video", "short_video": "has 2 frames",
                "bad_image": "cannot read this image", "few_images": "has 2 images"}  # fmt: skip
    assert expected[problem] in err


def test_cli_bad_results_and_options(tmp_path, tiny, capsys):
    assert _cli("--results", tmp_path / "missing.npz", "--out", tmp_path / "r.mp4") == 2
    assert "missing.npz" in capsys.readouterr().err
    assert _cli("--results", tiny, "--out", tmp_path / "r.avi") == 2
    assert ".mp4" in capsys.readouterr().err
    assert _cli("--results", tiny, "--out", tmp_path / "r.mp4", "--frames", "10:20") == 2
    assert "selects none" in capsys.readouterr().err
    assert _leftovers(tmp_path) == [] and not (tmp_path / "r.mp4").exists()


@needs_renderer
def test_frame_aspect_mismatch_is_an_input_error(tmp_path, loaded):
    folder = tmp_path / "square"
    folder.mkdir()
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(folder / "0.png")
    with pytest.raises(InputError, match="aspect ratio"):
        _render(loaded, tmp_path / "out.mp4", FrameReader(images=folder), frames=slice(0, 1))
    assert not (tmp_path / "out.mp4").exists() and _leftovers(tmp_path) == []


def test_parse_frames_and_select():
    assert parse_frames("10:50:2") == slice(10, 50, 2)
    assert parse_frames("::3") == slice(None, None, 3)
    assert parse_frames("7") == slice(7, 8)
    for bad in ("a:b", "1:2:0", "1:2:3:4"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_frames(bad)
    assert select_frames(10, slice(2, None, 3)).tolist() == [2, 5, 8]
    with pytest.raises(ConfigError):
        select_frames(10, slice(20, 30))
    assert panel_size((720, 1280), 1920) == (540, 960)
    assert panel_size((121, 161), 322) == (120, 160)


def test_cli_starts_without_pyrender():
    code = (
        "import sys; sys.modules['pyrender'] = None\n"
        "import slahmr_opt.cli.render, slahmr_opt.render.render\n"
        "from slahmr_opt.render.backend import RendererUnavailableError, import_pyrender\n"
        "try:\n    import_pyrender()\nexcept RendererUnavailableError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "apt-get install libosmesa6" in out.stdout and "pyrender==0.1.45" in out.stdout


# Geometry (no OpenGL).


def test_ground_frame_from_slam_floor_and_without_floor():
    rng = np.random.default_rng(0)
    R_c2w = np.repeat(np.diag([1.0, -1.0, -1.0])[None], 3, 0)  # camera y down = world -y
    centres = np.array([[0.0, 1.5, 0.0], [1.0, 1.5, 0.0], [2.0, 1.5, 0.0]])
    joints = rng.uniform([-1, 0.1, 2], [1, 1.7, 4], (50, 3))
    # Floor y = 0 given in a SLAM world that is the result world shifted by t.
    M = np.eye(4)
    M[:3, 3] = [0.0, -0.4, 0.0]  # result = slam + t, so the slam floor is at y = 0.4
    G = scene.ground_frame(np.array([0, 1, 0, 0.4]), M, R_c2w, centres, joints)
    assert np.allclose(G[:3, :3] @ G[:3, :3].T, np.eye(3))
    assert np.allclose(scene.apply(G, np.array([5.0, 0.0, 3.0]))[1], 0.0)
    assert np.allclose(scene.apply(G, centres[0]), [0, 1.5, 0])
    assert np.allclose(G[:3, :3] @ R_c2w[0][:, 2], [0, 0, 1])  # first camera looks along +z
    G2 = scene.ground_frame(None, None, R_c2w, centres, joints)
    assert scene.apply(G2, joints)[:, 1].min() == pytest.approx(0.05)
    assert np.allclose(G2[1, :3], [0, 1, 0])


def test_view_pose_keeps_points_in_view():
    rng = np.random.default_rng(1)
    points = rng.uniform([-3, 0, -2], [4, 2, 9], (200, 3))
    for view in ("above", "side"):
        pose = scene.view_pose(points, view, np.radians(45), 16 / 9)
        cam = (points - pose[:3, 3]) @ pose[:3, :3]  # OpenGL camera coordinates
        assert np.all(cam[:, 2] < 0)
        ndc_x = cam[:, 0] / -cam[:, 2] / (np.tan(np.radians(22.5)) * 16 / 9)
        ndc_y = cam[:, 1] / -cam[:, 2] / np.tan(np.radians(22.5))
        assert np.abs(ndc_x).max() <= 1 and np.abs(ndc_y).max() <= 1
        assert max(np.abs(ndc_x).max(), np.abs(ndc_y).max()) > 0.8  # and fills the view
    assert np.allclose(
        scene.view_pose(points, "side", 1.0, 1.0)[:3, 1] @ [0, 1, 0], np.cos(0.1745), atol=1e-3
    )


def test_frustum_corners_project_to_image_corners():
    a = np.radians(30.0)
    R_c2w = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    centre = np.array([1.0, 2.0, 3.0])
    p0, p1 = scene.frustum_segments(R_c2w, centre, INTRINS, (H, W), 0.5)
    assert np.allclose(p0[:4], centre)
    cam = (p1[:4] - centre) @ R_c2w  # world -> OpenCV camera
    uv = cam[:, :2] / cam[:, 2:] * INTRINS[:2] + INTRINS[2:]
    assert np.allclose(uv, [[0, 0], [W, 0], [W, H], [0, H]])
    assert np.allclose(cam[:, 2], 0.5)


def test_meshes_normals_and_tubes():
    board = scene.checkerboard(np.zeros(2), 2.0, 1.0)
    tri = board.vertices[board.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(n[:, 1] > 0) and np.allclose(board.vertices[:, 1], 0)
    assert len(np.unique(board.colors, axis=0)) == 2
    # An outward-wound tetrahedron: vertex normals point away from its centre.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    normals = scene.vertex_normals(v, f)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1)
    assert np.all(np.sum(normals * (v - v.mean(0)), 1) > 0)
    tube = scene.tubes(np.zeros((1, 3)), np.array([[0.0, 0.0, 2.0]]), 0.1, (1, 0, 0), sides=8)
    assert np.allclose(np.linalg.norm(tube.vertices[:, :2], axis=1), 0.1, atol=1e-6)
    merged = scene.merge_meshes([board, tube])
    assert merged.faces.max() == len(merged.vertices) - 1


def test_floor_of_a_scene_kilometres_wide():
    """A person placed 2 km off (a diverged fit) still gets a floor, of at most ~40 tiles a side."""
    from slahmr_opt.render.render import _WorldView

    points = np.array([[0.0, 0.0, 0.0], [416.0, 0.9, 2058.0]])
    floor = _WorldView._floor(points, 4.0)
    width = np.ptp(np.asarray(floor.vertices)[:, 0])
    assert width >= 2058 and len(floor.faces) <= 2 * 41 * 41
