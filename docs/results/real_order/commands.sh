# How the camera-rate candidates of RULE.md were made and judged (2026-12-02, 2-core CPU, no GPU).
# data: python scripts/make_demo_model.py builds runs/lc (synth 10 x 50 frames at 64x224) on first use
python scripts/make_demo_model.py --lc /work/runs/lc --camera-rate 20000 --run rate20k --out A.ckpt            # A
python scripts/make_demo_model.py --lc /work/runs/lc --camera-rate 20000 --run rate20k_ft --steps 500 \
    --out C.ckpt --set init_from demo_spike_64x224.ckpt                                                       # C
r2sdepth fit-sim car_250x400.dat --sensor 250x400 --out cam.json \
    --reference kitti_raw/2011_09_26/2011_09_26_drive_0009_sync/image_02/data                                 # sensor of D
python scripts/make_demo_model.py --lc /work/runs/lc --camera-rate 20000 --run rate20k_d --steps 500 --out D.ckpt \
    --set init_from demo_spike_64x224.ckpt --set loss.depth_weight 1.0 --set loss.photo_weight 0 \
    --set data.gt_source exact --set data.sim.gain 1.5348 --set data.sim.dark_current 0.1541 \
    --set data.sim.fpn_sigma 0.0291                                                                           # D
python benchmarks/real_recording_order.py --checkpoint D.ckpt A.ckpt C.ckpt demo real --out real_order
