"""Write camera-frame bodies in the exact file layouts of WHAM, TRACE, GVHMR, TRAM and SLAHMR.

Test fixtures, written from the tools' own save calls (sources in the readers' docstrings:
``slahmr_opt/inputs/initializers/*.py``), not through the
readers. A body is given in *our* camera (``ours`` intrinsics); a tool that assumed another focal
length saw the same image, so it is written at the same pixel with its depth scaled by
``f_tool / f_ours``. The tool's ``transl`` is its pelvis minus its model's rest pelvis.
"""

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.inputs.initializers.common import REST_PELVIS


@dataclass
class CamBody:
    """One person in our camera: video ``frames`` (N,), ``orient_c`` (N, 3), ``pose`` (N, 21, 3),
    ``pelvis_c`` (N, 3), ``betas`` (10,)."""

    frames: np.ndarray
    orient_c: np.ndarray
    pose: np.ndarray
    pelvis_c: np.ndarray
    betas: np.ndarray

    def rows(self, keep: np.ndarray) -> "CamBody":
        return CamBody(
            self.frames[keep], self.orient_c[keep], self.pose[keep], self.pelvis_c[keep], self.betas
        )


def in_tool_camera(pelvis_c: np.ndarray, ours: np.ndarray, tool: np.ndarray) -> np.ndarray:
    """Pelvis (N, 3) seen by a camera ``tool = [f, f, cx, cy]`` at the pixel ours sees it."""
    x, y, z = pelvis_c.T
    u, v = ours[0] * x / z + ours[2], ours[1] * y / z + ours[3]
    zt = z * tool[0] / ours[0]
    return np.stack([(u - tool[2]) * zt / tool[0], (v - tool[3]) * zt / tool[1], zt], -1)


def diagonal_camera(image_size) -> np.ndarray:
    h, w = image_size
    f = float(np.hypot(h, w))
    return np.array([f, f, w / 2, h / 2])


def _rotmat(aa: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(*aa.shape[:-1], 3, 3)


def write_wham(path: Path, people: dict, ours: np.ndarray, image_size) -> Path:
    """``joblib.dump(results)``, ``results = defaultdict(dict)`` keyed by int track id."""
    tool = diagonal_camera(image_size)
    results = collections.defaultdict(dict)
    for tid, b in people.items():
        n = len(b.frames)
        pose = np.concatenate([b.orient_c, b.pose.reshape(n, 63), np.zeros((n, 6))], 1)
        results[tid]["pose"] = pose.astype(np.float32)
        trans = in_tool_camera(b.pelvis_c, ours, tool) - REST_PELVIS["smpl"]
        results[tid]["trans"] = trans.astype(np.float32)
        results[tid]["pose_world"] = pose.astype(np.float32)
        results[tid]["trans_world"] = np.zeros((n, 3), np.float32)
        results[tid]["betas"] = np.tile(b.betas, (n, 1)).astype(np.float32)
        results[tid]["frame_ids"] = b.frames.astype(np.int64)
    joblib.dump(results, path)
    return path


def write_gvhmr(path: Path, b: CamBody, ours: np.ndarray, image_size) -> Path:
    """``torch.save(pred)`` with GVHMR's keys; row i is video frame i (``b.frames`` = arange)."""
    assert (b.frames == np.arange(len(b.frames))).all()
    tool = diagonal_camera(image_size)
    n = len(b.frames)
    K = torch.tensor([[tool[0], 0, tool[2]], [0, tool[1], tool[3]], [0, 0, 1]]).repeat(n, 1, 1)

    def params(orient, transl):
        return {
            "body_pose": torch.tensor(b.pose.reshape(n, 63), dtype=torch.float32),
            "betas": torch.tensor(np.tile(b.betas, (n, 1)), dtype=torch.float32),
            "global_orient": torch.tensor(orient, dtype=torch.float32),
            "transl": torch.tensor(transl, dtype=torch.float32),
        }

    transl = in_tool_camera(b.pelvis_c, ours, tool) - REST_PELVIS["smplx"]
    pred = {
        "smpl_params_global": params(np.zeros((n, 3)), np.zeros((n, 3))),
        "smpl_params_incam": params(b.orient_c, transl),
        "K_fullimg": K.float(),
        "net_outputs": {"static_conf_logits": torch.zeros(1, n, 6)},
    }
    torch.save(pred, path)
    return path


def write_tram(folder: Path, people: list, ours: np.ndarray, focal: float, center) -> Path:
    """``camera.npy`` (dict of numpy) and ``hps/hps_track_{k}.npy`` (dict of torch tensors)."""
    (folder / "hps").mkdir(parents=True, exist_ok=True)
    tool = np.array([focal, focal, *center])
    T = max(int(b.frames.max()) for b in people) + 1
    camera = {
        "pred_cam_R": np.tile(np.eye(3), (T, 1, 1)),
        "pred_cam_T": np.zeros((T, 3)),
        "img_focal": np.float64(focal),
        "img_center": np.asarray(center, np.float64),
    }
    np.save(folder / "camera.npy", camera)
    for k, b in enumerate(people):
        n = len(b.frames)
        rotmat = _rotmat(np.concatenate([b.orient_c[:, None], b.pose, np.zeros((n, 2, 3))], 1))
        trans = in_tool_camera(b.pelvis_c, ours, tool) - REST_PELVIS["smpl"]
        results = {
            "pred_cam": torch.zeros(n, 3),
            "pred_pose": torch.tensor(rotmat[..., :2].reshape(n, 144), dtype=torch.float32),
            "pred_shape": torch.tensor(np.tile(b.betas, (n, 1)), dtype=torch.float32),
            "pred_rotmat": torch.tensor(rotmat, dtype=torch.float32),
            "pred_trans": torch.tensor(trans[:, None], dtype=torch.float32),
            "frame": torch.from_numpy(b.frames.astype(np.int64)),
        }
        np.save(folder / "hps" / f"hps_track_{k}.npy", results)
    return folder


def trace_camera(image_size) -> np.ndarray:
    """548 px on a 512 px square input = the padded frame of side max(H, W)."""
    h, w = image_size
    f = 548 * max(h, w) / 512
    return np.array([f, f, w / 2, h / 2])


def write_trace(path: Path, people: dict, ours: np.ndarray, image_size) -> Path:
    """``np.savez(path, outputs=dict, imgpaths=list)``, detections flattened frame by frame."""
    tool = trace_camera(image_size)
    rows = []
    for tid, b in people.items():
        pelvis = in_tool_camera(b.pelvis_c, ours, tool)
        # root-aligned joints: the pelvis sits 4 cm above the hip mid-point along the body's up
        up = np.einsum("nij,j->ni", _rotmat(b.orient_c), [0.0, 0.04, 0.0])
        for i, f in enumerate(b.frames):
            rows.append((f, tid, b.orient_c[i], b.pose[i], b.betas, up[i], pelvis[i] - up[i]))
    rows.sort(key=lambda r: (r[0], r[1]))
    d = len(rows)
    j3d = np.zeros((d, 44, 3))
    j3d[:, 0] = [r[5] for r in rows]
    thetas = np.zeros((d, 72))
    thetas[:, :3] = [r[2] for r in rows]
    thetas[:, 3:66] = [r[3].reshape(63) for r in rows]
    outputs = {
        "reorganize_idx": np.array([r[0] for r in rows]),
        "j3d": j3d.astype(np.float32),
        "world_cams": np.zeros((d, 3), np.float32),
        "world_trans": np.zeros((d, 3), np.float32),
        "world_global_rots": np.zeros((d, 3), np.float32),
        "pj2d_org": np.zeros((d, 44, 2), np.float32),
        "cam_trans": np.array([r[6] for r in rows], np.float32),
        "pj2d_org_h36m17": np.zeros((d, 17, 2), np.float32),
        "joints_h36m17": np.zeros((d, 17, 3), np.float32),
        "center_confs": np.ones(d, np.float32),
        "track_ids": np.array([r[1] for r in rows]),
        "smpl_thetas": thetas.astype(np.float32),
        "smpl_betas": np.array([r[4] for r in rows], np.float32),
    }
    n_frames = int(max(b.frames.max() for b in people.values())) + 1
    imgpaths = [f"/frames/{i:08d}.jpg" for i in range(n_frames)]
    np.savez(path, outputs=outputs, imgpaths=imgpaths)
    return path


def write_slahmr(
    run_dir: Path,
    world: dict,
    cam_R: np.ndarray,
    cam_t: np.ndarray,
    intrins: np.ndarray,
    track_ids: list[int],
    vis: np.ndarray,
    seq_interval: tuple[int, int],
    data_start: int = 0,
    stage: str = "smooth_fit",
    track_mask: np.ndarray | None = None,
    fps: float | None = 30.0,
) -> Path:
    """``<run>/<stage>/seq_000060_world_results.npz``, ``<run>/track_info.json`` and
    ``<run>/.hydra/config.yaml``. ``world``: ``trans`` (B, T, 3), ``root_orient`` (B, T, 3),
    ``pose_body`` (B, T, 63), ``betas`` (B, 16); cameras (T, ...) repeated per person; ``vis``
    (B, num_imgs) detections over the data interval."""
    B, T = world["trans"].shape[:2]
    arrays = {
        "latent_pose": np.zeros((B, T, 32), np.float32),
        **{k: np.asarray(v, np.float32) for k, v in world.items()},
        "world_scale": np.array([[0.37]], np.float32),
        "cam_R": np.broadcast_to(cam_R, (B, *cam_R.shape)).astype(np.float32),
        "cam_t": np.broadcast_to(cam_t, (B, *cam_t.shape)).astype(np.float32),
        "intrins": np.asarray(intrins, np.float32),
    }
    if track_mask is not None:
        arrays["track_mask"] = track_mask
    (run_dir / stage).mkdir(parents=True, exist_ok=True)
    path = run_dir / stage / "seq_000060_world_results.npz"
    np.savez(path, **arrays)
    info = {
        "tracks": {
            str(tid): {"index": i, "vis_mask": vis[i].tolist()} for i, tid in enumerate(track_ids)
        },
        "meta": {
            "seq_interval": list(seq_interval),
            "data_interval": [data_start, data_start + vis.shape[1]],
        },
    }
    (run_dir / "track_info.json").write_text(json.dumps(info))
    if fps is not None:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        (run_dir / ".hydra" / "config.yaml").write_text(
            f"data:\n  type: video\n  frame_opts:\n    fps: {fps}\nfps: 30\n"
        )
    return path
