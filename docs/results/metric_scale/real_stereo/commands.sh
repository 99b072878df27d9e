. /work/main/.venv/bin/activate
export PYTHONPATH=src OMP_NUM_THREADS=1
K=/work/shared/data/kitti_raw
for s in 0 1 2; do
  r2sdepth train --config train_rgb_synth --out runs/real_stereo/s$s --data.root $K --data.train_split runs/real_stereo/train0009.txt \
    --data.val_split null --data.stereo true --data.context "[]" --model.init_depth 10 --data.batch_size 4 \
    --trainer.max_steps 500 --seed $s --trainer.enable_progress_bar false > runs/real_stereo/train_s$s.log 2>&1
  for sc in median none camera-height-run; do
    r2sdepth eval --checkpoint runs/real_stereo/s$s/checkpoints/last.ckpt --data $K --split runs/real_stereo/s0005.txt --scaling $sc \
      --out runs/real_stereo/eval_s${s}_0005_$sc.json > /dev/null 2>&1
  done
done
echo done > runs/real_stereo/DONE
