# How docs/results/metric_scale/real_stereo/*.json were made (run from the repository root).
set -e
K=../shared/data/kitti_raw
mkdir -p runs/real_stereo
for i in $(seq 1 49); do echo "2011_09_26/2011_09_26_drive_0009_sync $i l"; done > runs/real_stereo/train0009.txt
for i in $(seq 0 29); do echo "2011_09_26/2011_09_26_drive_0005_sync $i l"; done > runs/real_stereo/s0005.txt
for s in 0 1 2; do
  r2sdepth train --config train_rgb_synth --out runs/real_stereo/s$s --data.root $K \
    --data.train_split runs/real_stereo/train0009.txt --data.val_split null --data.stereo true --data.context "[]" \
    --model.init_depth 10 --data.batch_size 4 --trainer.max_steps 500 --seed $s --trainer.enable_progress_bar false
  for sc in median none camera-height-run; do
    r2sdepth eval --checkpoint runs/real_stereo/s$s/checkpoints/last.ckpt --data $K --split runs/real_stereo/s0005.txt \
      --scaling $sc --out runs/real_stereo/eval_s${s}_0005_$sc.json
  done
done
