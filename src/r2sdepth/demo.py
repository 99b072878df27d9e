"""``r2sdepth demo``: the main job on embedded default data, no network needed.

Makes a short video by panning across a photograph that ships with scikit-image, simulates
its spike stream with the project's camera model, summarises the stream and writes TFP/TFI
reconstructions and GIFs to the output folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from r2sdepth.spike.io import SpikeStream
from r2sdepth.spike.simulate import SimParams, simulate_to_file


def panning_frames(n: int = 12, height: int = 128, width: int = 192, step: int = 6) -> list[np.ndarray]:
    """``n`` RGB frames ``[H, W, 3]`` uint8: a window sliding right across skimage's astronaut."""
    from skimage import data

    img = data.astronaut()  # 512 x 512 RGB, ships with scikit-image
    y0 = (img.shape[0] - height) // 2
    return [np.ascontiguousarray(img[y0:y0 + height, i * step:i * step + width]) for i in range(n)]


def run_demo(out: Path, seed: int = 0) -> dict:
    """Run the demo into ``out``; returns the stream summary."""
    from r2sdepth.viz import save_png, save_reconstructions

    out.mkdir(parents=True, exist_ok=True)
    frames = panning_frames()
    for i, f in enumerate(frames):
        save_png(out / "rgb" / f"{i:06d}.png", f)
    params = SimParams(planes_per_frame=64, video_fps=10.0)
    stream_path = out / "stream.dat"
    simulate_to_file(frames, stream_path, params, seed=seed, source="skimage.data.astronaut (panned)")
    with SpikeStream(stream_path) as st:
        info = st.stats()
        save_reconstructions(st, out / "tfp", method="tfp", window=64, every=64, gif=out / "tfp.gif")
        save_reconstructions(st, out / "tfi", method="tfi", window=64, every=64, gif=out / "tfi.gif")
    (out / "stream_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"spike stream  {stream_path}  ({info['frames']} planes, {info['height']}x{info['width']}, "
          f"mean rate {info['mean_rate']:.3f})")
    print(f"TFP images    {out / 'tfp'}  (GIF {out / 'tfp.gif'})")
    print(f"TFI images    {out / 'tfi'}  (GIF {out / 'tfi.gif'})")
    return info
