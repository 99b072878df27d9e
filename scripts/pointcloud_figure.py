"""A figure of a point cloud written by ``r2sdepth infer --pointcloud``: the camera view, a
side view and a bird's-eye view (metres), optionally with the frame's LiDAR points in the
bird's-eye view (for the reader's eye only: nothing is fitted to them).

    python scripts/pointcloud_figure.py OUT/pointcloud/000003.ply --out docs/pointcloud.png \
        --velodyne KITTI/2011_09_26/..._sync/velodyne_points/data/0000000003.bin --calib KITTI/2011_09_26
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from r2sdepth.data.kitti import load_calib, load_velodyne  # noqa: E402
from r2sdepth.pointcloud import read_ply  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ply")
    ap.add_argument("--out", required=True)
    ap.add_argument("--velodyne", help="the frame's velodyne .bin (drawn in the bird's-eye view)")
    ap.add_argument("--calib", help="the date folder with calib_*.txt (for --velodyne)")
    ap.add_argument("--title", default="")
    ap.add_argument("--max-range", type=float, default=40.0)
    a = ap.parse_args()
    pts, cols = read_ply(a.ply)
    keep = pts[:, 2] < a.max_range
    pts, cols = pts[keep], cols[keep] / 255.0
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.6), dpi=110)
    ax[0].scatter(pts[:, 2], -pts[:, 1], c=cols, s=1, lw=0)
    ax[0].set(xlabel="forward z (m)", ylabel="up -y (m)", title="side view (camera at 0, 0)", aspect="equal")
    ax[0].set_ylim(-2.5, 6)
    ax[1].scatter(pts[:, 0], pts[:, 2], c=cols, s=1, lw=0, label="prediction")
    if a.velodyne and a.calib:
        c = load_calib(a.calib, "02", need_velo=True)
        v = load_velodyne(a.velodyne)
        xyz1 = np.c_[v[:, :3], np.ones(len(v))]
        cam = (c.R_rect @ c.velo_to_cam @ xyz1.T).T[:, :3]  # rectified camera 00 frame
        cam = cam[(cam[:, 2] > 0) & (cam[:, 2] < a.max_range) & (np.abs(cam[:, 0]) < a.max_range)]
        ax[1].scatter(cam[:, 0], cam[:, 2], s=0.3, c="k", alpha=0.35, lw=0, label="LiDAR (not used)")
        ax[1].legend(loc="upper right", markerscale=8, fontsize=8)
    ax[1].set(xlabel="right x (m)", ylabel="forward z (m)", title="bird's-eye view", aspect="equal")
    ax[1].set_xlim(-20, 20)
    ax[1].set_ylim(0, a.max_range)
    if a.title:
        fig.suptitle(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out} ({len(pts)} points)")


if __name__ == "__main__":
    main()
