"""Plant known mistakes in the learning core, one at a time, and check the test suite catches each.

    python scripts/mutation_check.py [--only NAME ...] [--work DIR]

Each mutation is applied to a copy of the repository (``--work``, default a temporary folder;
the checkout itself is never modified), the tests that guard it run with ``pytest -x -n 0``, and the
result is printed: ``caught`` (a test failed, as it must) or ``MISSED``. Exit status 1 when any
mutation was missed. Runs on CPU; about 1-2 minutes per mutation on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "tests/test_learning_core.py"

# name: (file, text to replace, replacement, tests to run)
MUTATIONS: dict[str, tuple[str, str, str, list[str]]] = {
    "teacher-not-frozen": (
        "src/r2sdepth/train/distill.py",
        "        for m in self.frozen_modules():\n            m.eval()",
        "        pass",
        [CORE + "::test_teacher_frozen_through_a_real_fit_with_validation"],
    ),
    "schedule-whole-dataset": (
        "src/r2sdepth/train/module.py",
        "            nb = t.num_training_batches\n",
        "            nb = t.num_training_batches * t.world_size\n",
        [CORE + "::test_fusion_schedule_same_on_two_ddp_processes"],
    ),
    "geometry-in-autocast-precision": (
        "src/r2sdepth/geometry.py",
        "    return wrapper  # type: ignore[return-value]",
        "    return fn",
        [CORE + "::test_geometry_is_float32_under_autocast"],
    ),
    "ssim-denominator-sign": (
        "src/r2sdepth/losses.py",
        "d = (mx * mx + my * my + self.c1)",
        "d = (mx * mx - my * my + self.c1)",
        [CORE + "::test_ssim_matches_an_independent_reference"],
    ),
    "automask-not-applied": (
        "src/r2sdepth/losses.py",
        "        loss_map = torch.minimum(best, ident_best)",
        "        loss_map = best",
        [CORE + "::test_loss_map_is_masked_per_pixel_minimum_with_zero_gradient_where_masked"],
    ),
    "eval-mean-scaling": (
        "src/r2sdepth/evaluate.py",
        "r = float(np.median(gv) / max(np.median(pv), 1e-12))",
        "r = float(np.mean(gv) / max(np.mean(pv), 1e-12))",
        [CORE + "::test_evaluation_uses_median_not_mean_scaling"],
    ),
    "val-without-median-scaling": (
        "src/r2sdepth/train/module.py",
        'EvalProtocol(crop=crop, max_depth=max_depth, scaling="median")',
        'EvalProtocol(crop=crop, max_depth=max_depth, scaling="none")',
        [CORE + "::test_validation_metrics_equal_r2sdepth_eval"],
    ),
    "gradient-through-pixel-weights": (
        "src/r2sdepth/losses.py",
        "    es, et = student_err.detach(), teacher_err.detach()",
        "    es, et = student_err, teacher_err",
        [CORE + "::test_pixel_weights_carry_no_gradient", CORE + "::test_distill_step_weights_are_detached"],
    ),
    "export-teacher-decoder": (
        "src/r2sdepth/models/r2sdepth.py",
        "        return net.student_decoder(net.spike(spikes))",
        "        return net.decoder(net.spike(spikes))",
        [CORE + "::test_export_and_infer_share_the_student_path"],
    ),
    "on-the-fly-window-from-t+1": (
        "src/r2sdepth/data/drives.py",
        "            lum,\n            frame,\n            o.window,",
        "            lum,\n            frame + 1,\n            o.window,",
        [CORE + "::test_built_and_on_the_fly_windows_are_byte_equal"],
    ),
    "window-shifted-one-chunk": (
        "src/r2sdepth/spike/simulate.py",
        "[chunk(j) for j in range(j0, frame + 1)]",
        "[chunk(j) for j in range(j0 + 1, frame + 2)]",
        [
            "tests/test_simulate.py::test_window_is_causal",
            "tests/test_simulate.py::test_written_stream_windows_equal_on_the_fly_windows",
        ],
    ),
    "augmentation-ignores-epoch": (
        "src/r2sdepth/data/dataset.py",
        'stable_seed(self.seed, "aug", epoch, i)',
        'stable_seed(self.seed, "aug", 0, i)',
        [CORE + "::test_augmentation_is_a_function_of_seed_epoch_index"],
    ),
    "gt-falls-back-to-png": (
        "src/r2sdepth/data/kitti.py",
        '    if src in ("annotated", "exact"):',
        '    png = Path(root) / drive / "proj_depth" / "groundtruth" / f"image_{c}" / f"{frame:010d}.png"\n'
        '    if src in ("annotated", "exact") or png.is_file():',
        ["tests/test_kitti_eval.py::test_gt_source_is_explicit_and_never_mixed"],
    ),
    "resume-forgets-data-position": (
        "src/r2sdepth/train/datamodule.py",
        "        for i in idx[k:]:",
        "        for i in idx:",
        ["tests/test_reliability.py::test_sigkill_resume_equals_uninterrupted_run"],
    ),
    "checkpoint-loads-pickles": (
        "src/r2sdepth/checkpoint.py",
        'map_location="cpu", weights_only=True)',
        'map_location="cpu", weights_only=False)',
        ["tests/test_reliability.py::test_hostile_checkpoints_are_refused_through_the_cli"],
    ),
    "head-columns-at-the-start": (
        "src/r2sdepth/spike/io.py",
        "        pix = pix[:, :, col0 : col0 + width]",
        "        pix = pix[:, :, wst - width - col0 : wst - col0]",
        ["tests/test_spike_io.py::test_head_cols_dropped"],
    ),
    "resume-ignores-config-change": (
        "src/r2sdepth/train/run.py",
        '        diff = differing_keys(merge(defaults(stage2="distill" in cfg), read_yaml(saved)), cfg)',
        "        diff = []",
        ["tests/test_interfaces.py::test_resume_with_a_changed_config_is_refused_unless_asked"],
    ),
    "trainer-keys-unchecked": (
        "src/r2sdepth/config.py",
        "    _check_trainer_keys(trainer_user)\n",
        "",
        ["tests/test_interfaces.py::test_bad_config_keys_and_values_fail_fast_naming_the_key"],
    ),
    "rig-window-ignores-offset": (
        "src/r2sdepth/data/rig.py",
        "self.rate_hz, self.clock_offset_s))",
        "self.rate_hz, 0.0))",
        ["tests/test_rig.py::test_windows_chosen_by_time_and_clock_offset_recovered"],
    ),
    "sim-plane-light-at-end": (
        "src/r2sdepth/spike/simulate.py",
        "return g * l0 + dark - np.float32(0.5) * step, step",
        "return g * l0 + dark, step",
        ["tests/test_simulate.py::test_potential_integrates_the_linear_ramp_exactly"],
    ),
    "offset-windows-on-whole-planes": (
        "src/r2sdepth/data/rig.py",
        "lo = base + s - 0.5 * w",
        "lo = np.rint(base + s) - w // 2",
        ["tests/test_rig.py::test_offset_estimate_is_not_tied_to_the_plane_grid"],
    ),
    "depth-sup-keeps-far-pixels": (
        "src/r2sdepth/train/module.py",
        'valid = ((gt > 0) & (gt < cfg["max_depth"])).to(gt.dtype)',
        "valid = (gt > 0).to(gt.dtype)",
        ["tests/test_train.py::test_depth_supervision_is_the_si_log_loss_on_valid_pixels_by_hand"],
    ),
    "depth-sup-not-added": (
        "src/r2sdepth/train/module.py",
        'res["loss"] = res["loss"] + wd * res["depth_sup"]',
        'res["loss"] = res["loss"] + 0.0 * res["depth_sup"]',
        ["tests/test_train.py::test_depth_supervised_training_through_the_cli_learns"],
    ),
    "traffic-lead-not-moving": (
        "src/r2sdepth/data/synthetic.py",
        "cam_h, speed * rng.uniform(0.9, 1.0), 0.2)",
        "cam_h, 0.0 * rng.uniform(0.9, 1.0), 0.2)",
        ["tests/test_synthetic.py::test_traffic_lead_vehicle_keeps_its_distance_and_is_in_the_exact_depth"],
    ),
    "roadside-glass-inside-the-body": (
        "src/r2sdepth/data/synthetic.py",
        "np.array([hi[0] + 0.02, lo[1] + rng.uniform(0.35, 0.45) * hh, hi[2] - 0.12 * ln]),",
        "np.array([hi[0] - 0.02, lo[1] + rng.uniform(0.35, 0.45) * hh, hi[2] - 0.12 * ln]),",
        [
            "tests/test_synthetic.py::test_roadside_view_static_camera_square_pixels_and_depth_of_a_passing_car"
        ],
    ),
    "oxts-rotation-order-reversed": (
        "src/r2sdepth/data/kitti.py",
        "poses[i, :3, :3] = Rz @ Ry @ Rx",
        "poses[i, :3, :3] = Rx @ Ry @ Rz",
        [
            "tests/test_kitti_layout.py::test_oxts_poses_match_distances_on_the_sphere_and_the_first_frame_heading"
        ],
    ),
    "oxts-mercator-scale-per-frame": (
        "src/r2sdepth/data/kitti.py",
        "scale = np.cos(lat[0] * np.pi / 180.0)",
        "scale = np.cos(lat * np.pi / 180.0)",
        [
            "tests/test_kitti_layout.py::test_oxts_poses_match_distances_on_the_sphere_and_the_first_frame_heading"
        ],
    ),
    "oxts-mercator-scale-of-frame-1": (
        "src/r2sdepth/data/kitti.py",
        "scale = np.cos(lat[0] * np.pi / 180.0)",
        "scale = np.cos(lat[1] * np.pi / 180.0)",
        [
            "tests/test_kitti_layout.py::test_oxts_poses_match_distances_on_the_sphere_and_the_first_frame_heading"
        ],
    ),
    "stereo-transform-sign": (
        "src/r2sdepth/data/kitti.py",
        "t = np.linalg.solve(b.K, b.P_rect[:, 3]) - np.linalg.solve(a.K, a.P_rect[:, 3])",
        "t = np.linalg.solve(a.K, a.P_rect[:, 3]) - np.linalg.solve(b.K, b.P_rect[:, 3])",
        ["tests/test_kitti_layout.py::test_stereo_transform_against_projecting_with_p_rect"],
    ),
    "timestamps-fraction-dropped": (
        "src/r2sdepth/data/kitti.py",
        'hms, frac = (clock.split(".") + ["0"])[:2]',
        'hms, frac = clock.split(".")[0], "0"',
        ["tests/test_kitti_layout.py::test_read_timestamps_by_hand"],
    ),
    "fused-window-decoded-upside-down": (
        "src/r2sdepth/spike/simulate.py",
        "return decode_planes(simulate_chunk(get(j - 1), get(j), params, packed=True, **kw), h, w)",
        "return decode_planes(simulate_chunk(get(j - 1), get(j), params, packed=True, **kw), h, w, flipud=False)",
        ["tests/test_simulate.py::test_written_stream_windows_equal_on_the_fly_windows"],
    ),
    "ensemble-arithmetic-mean-of-disparity": (
        "src/r2sdepth/models/r2sdepth.py",
        "    log_scaled = torch.stack([torch.log(lo + (hi - lo) * d) for d in disps]).mean(0)\n"
        "    return (torch.exp(log_scaled) - lo) / (hi - lo)",
        "    return torch.stack(disps).mean(0)",
        ["tests/test_ensemble.py::test_ensemble_depth_is_the_geometric_mean_of_its_members"],
    ),
    "ensemble-members-all-the-first": (
        "src/r2sdepth/export.py",
        '        prefix = f"members.{i}."',
        '        prefix = "members.0."',
        ["tests/test_adapt.py::test_adapt_an_ensemble_member_by_member"],
    ),
    "ensemble-first-member-only": (
        "src/r2sdepth/models/r2sdepth.py",
        '        outs = [m(spikes=spikes)["disp"] for m in self.members]',
        '        outs = [m(spikes=spikes)["disp"] for m in self.members[:1]]',
        ["tests/test_ensemble.py::test_ensemble_depth_is_the_geometric_mean_of_its_members"],
    ),
    "checksum-without-the-shape": (
        "src/r2sdepth/checkpoint.py",
        'h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())',
        'h.update(f"{k}|{t.dtype}|".encode())',
        ["tests/test_checkpoint_by_hand.py::test_state_checksum_is_sha256_of_the_documented_layout"],
    ),
    "rate-tolerance-one-sided": (
        "src/r2sdepth/checkpoint.py",
        "    if 1 / RATE_TOLERANCE <= ratio <= RATE_TOLERANCE:",
        "    if ratio <= RATE_TOLERANCE:",
        ["tests/test_checkpoint_by_hand.py::test_rate_mismatch_at_the_tolerance"],
    ),
    "frame-cache-rewrites-up-to-date-caches": (
        "src/r2sdepth/data/drives.py",
        "FrameCache(cache, drive, cam, size, ids)  # complete",
        "raise R2SDepthError('rewrite')  # complete",
        [
            "tests/test_frame_cache.py::test_cached_samples_equal_the_read_samples_and_stale_caches_are_refused"
        ],
    ),
    "randomised-camera-height-ignored": (
        "src/r2sdepth/data/synthetic.py",
        "cam_h = 1.65 if looks is None else looks.cam_height",
        "cam_h = 1.65",
        ["tests/test_synthetic.py::test_randomised_street_road_depth_by_hand_exposure_and_guards"],
    ),
    "randomised-exposure-ignored": (
        "src/r2sdepth/data/synthetic.py",
        "gain = world.exposure * np.asarray(world.white, np.float32)",
        "gain = np.asarray(world.white, np.float32)",
        ["tests/test_synthetic.py::test_randomised_street_road_depth_by_hand_exposure_and_guards"],
    ),
    "synth-folder-claim-ignores-new-options": (
        "src/r2sdepth/data/synthetic.py",
        "if old != params:",
        "if {k: old.get(k) for k in params} != params:",
        ["tests/test_synthetic.py::test_randomised_street_road_depth_by_hand_exposure_and_guards"],
    ),
    "roadside-camera-drives-on": (
        "src/r2sdepth/data/synthetic.py",
        "yaw, pitch, x, z = world.yaw, world.pitch, world.cam_x, 0.0",
        "yaw, pitch, x, z = world.yaw, world.pitch, world.cam_x, world.speed * t + t",
        [
            "tests/test_synthetic.py::test_roadside_view_static_camera_square_pixels_and_depth_of_a_passing_car"
        ],
    ),
    "roadside-pixels-not-square": (
        "src/r2sdepth/data/synthetic.py",
        "        f = 0.75 * width\n",
        "        f = 0.75 * height\n",
        [
            "tests/test_synthetic.py::test_roadside_view_static_camera_square_pixels_and_depth_of_a_passing_car"
        ],
    ),
    "roadside-shared-looks-skip-vehicles": (
        "src/r2sdepth/data/synthetic.py",
        "                    car.tex, car.tint = _look(rng)\n",
        "                    pass\n",
        ["tests/test_synthetic.py::test_roadside_shared_looks_walls_and_vehicles_draw_from_one_distribution"],
    ),
    "adapt-pose-warmup-ignored": (
        "src/r2sdepth/train/distill.py",
        "                    p.grad = None\n",
        "                    pass\n",
        ["tests/test_adapt.py::test_adapt_a_slim_model_to_an_image_folder_then_continue"],
    ),
    "adapt-slim-teacher-pose-section-ignored": (
        "src/r2sdepth/train/run.py",
        'pose = t_hp["pose"] if t_state["teacher_pose"] is not None else merge(t_hp["pose"], cfg.get("pose"))',
        'pose = t_hp["pose"]',
        ["tests/test_adapt.py::test_adapt_a_slim_model_to_an_image_folder_then_continue"],
    ),
    "adapt-fov-from-the-height": (
        "src/r2sdepth/metric.py",
        "fx = fy = (w / 2) / math.tan(math.radians(fov_deg) / 2)",
        "fx = fy = (h / 2) / math.tan(math.radians(fov_deg) / 2)",
        ["tests/test_adapt.py::test_adapt_a_slim_model_to_an_image_folder_then_continue"],
    ),
    "eval-gt-bypasses-the-recording-kind": (
        "src/r2sdepth/evaluate.py",
        "out.append(kinds[s.drive].gt(s.cam, s.frame))",
        "out.append(gt_depth(kitti_root, s.drive, s.frame, s.cam, source=src))",
        [
            "tests/test_sources.py::test_a_new_drive_kind_for_the_training_data_set_is_one_class_and_one_registry_line"
        ],
    ),
    "eval-intrinsics-from-the-kitti-calib-for-every-kind": (
        "src/r2sdepth/evaluate.py",
        "cache[key] = kind_for(root, s.drive).native_intrinsics(s.cam, s.frame)",
        "cache[key] = DriveKind.native_intrinsics(kind_for(root, s.drive), s.cam, s.frame)",
        [
            "tests/test_sources.py::test_a_new_drive_kind_for_the_training_data_set_is_one_class_and_one_registry_line"
        ],
    ),
    "post-process-masks-swapped": (
        "src/r2sdepth/models/r2sdepth.py",
        "return right * disp + left * disp_flipped + (1.0 - left - right)",
        "return left * disp + right * disp_flipped + (1.0 - left - right)",
        ["tests/test_post_process.py::test_flip_blend_by_hand"],
    ),
    "post-process-mirror-not-flipped-back": (
        "src/r2sdepth/models/r2sdepth.py",
        "disp = flip_blend(both[: len(spikes)], both[len(spikes) :].flip(-1))",
        "disp = flip_blend(both[: len(spikes)], both[len(spikes) :])",
        [
            "tests/test_post_process.py::"
            "test_spike_depth_post_processed_is_the_blend_of_the_window_and_its_mirror_image"
        ],
    ),
    "flip-leaves-depth-target-unflipped": (
        "src/r2sdepth/data/dataset.py",
        'out["depth_gt"] = gt.flip(-1) if flip else gt',
        'out["depth_gt"] = gt',
        ["tests/test_train.py::test_flip_is_consistent"],
    ),
    "flip-mirrors-the-focal-length-too": (
        "src/r2sdepth/data/dataset.py",
        "            K[0, 2] = self.w - 1 - K[0, 2]\n",
        "            K[0, 2] = self.w - 1 - K[0, 2]\n            K[0, 0] = -K[0, 0]\n",
        ["tests/test_train.py::test_flip_is_consistent"],
    ),
    "atomic-write-in-place": (
        "src/r2sdepth/atomic.py",
        "    tmp_p = tmp_path_for(path, keep_suffix=True)\n",
        "    tmp_p = Path(path)\n",
        ["tests/test_atomic.py"],
    ),
    "atomic-temporary-kept-on-error": (
        "src/r2sdepth/atomic.py",
        "        with contextlib.suppress(FileNotFoundError):\n            tmp_p.unlink()\n",
        "        pass\n",
        ["tests/test_atomic.py"],
    ),
    "project-translation-sign": (
        "src/r2sdepth/geometry.py",
        "        points = T[:, :3, :3] @ points + T[:, :3, 3:4]",
        "        points = T[:, :3, :3] @ points - T[:, :3, 3:4]",
        ["tests/test_properties.py::test_a_sideways_move_shifts_a_plane_by_fx_tx_over_z_pixels"],
    ),
    "warp-grid-half-pixel": (
        "src/r2sdepth/geometry.py",
        "padding_mode=padding_mode, align_corners=True)",
        "padding_mode=padding_mode, align_corners=False)",
        ["tests/test_properties.py::test_a_sideways_move_shifts_a_plane_by_fx_tx_over_z_pixels"],
    ),
    "ssim-statistics-of-a-source-frame": (
        "src/r2sdepth/losses.py",
        "    stats = target_stats(target)  # the target's SSIM statistics",
        "    stats = target_stats(sources[0])  # the target's SSIM statistics",
        [
            "tests/test_models_losses.py::"
            "test_multi_scale_loss_and_gradients_unchanged_by_computing_the_identity_error_once"
        ],
    ),
    "fused-adam-option-ignored": (
        "src/r2sdepth/train/module.py",
        'fused=bool(c["fused"]) or None',
        "fused=None",
        ["tests/test_train.py::test_speed_options_leave_the_training_unchanged_through_the_cli"],
    ),
    "compiled-ssim-left-in-place": (
        "src/r2sdepth/losses.py",
        "    finally:\n        _SSIM = eager",
        "    finally:\n        pass",
        ["tests/test_train.py::test_compiled_ssim_equals_eager_and_falls_back_without_a_compiler"],
    ),
    "identity-error-of-one-source": (
        "src/r2sdepth/losses.py",
        "ident_best = identity_error(target, sources, stats) if automask else None",
        "ident_best = identity_error(target, sources[:1], stats) if automask else None",
        [
            "tests/test_models_losses.py::"
            "test_multi_scale_loss_and_gradients_unchanged_by_computing_the_identity_error_once"
        ],
    ),
    "adapt-failed-import-left-behind": (
        "src/r2sdepth/train/adapt.py",
        "        except BaseException:\n            shutil.rmtree(tmp, ignore_errors=True)\n            raise\n",
        "        except BaseException:\n            raise\n",
        ["tests/test_adapt.py::test_adapt_bad_input"],
    ),
    "slim-extra-metadata-dropped": (
        "src/r2sdepth/export.py",
        "    meta.update(extra or {})\n",
        "",
        ["tests/test_adapt.py::test_adapt_a_slim_model_to_an_image_folder_then_continue"],
    ),
    "selfdistill-student-not-from-teacher": (
        "src/r2sdepth/train/distill.py",
        "            self.net.load_state_dict(self.teacher.state_dict())\n",
        "",
        ["tests/test_learning_core.py::test_teacher_frozen_through_a_real_fit_with_validation"],
    ),
    "default-fit-pads-instead-of-trained-size": (
        "src/r2sdepth/infer.py",
        '    if fit == "resize" and None not in trained:',
        '    if fit == "resize" and trained is None:',
        ["tests/test_live_input.py::test_default_network_size_is_the_trained_size_on_a_kitti_frame"],
    ),
    "follow-latency-from-read-time": (
        "src/r2sdepth/data/sources.py",
        "                arrived = self._arrival(t0 + self.window)",
        "                arrived = time.monotonic()",
        [
            "tests/test_live_input.py::test_follow_latency_counts_from_when_a_plane_was_on_disk_not_when_it_was_read"
        ],
    ),
    "velodyne-pixel-not-minus-one": (
        "src/r2sdepth/data/kitti.py",
        "u = np.round(uvz[ok, 0] / z[ok]) - 1",
        "u = np.round(uvz[ok, 0] / z[ok])",
        [
            "tests/test_references.py::test_velodyne_ground_truth_equals_an_opencv_projection_of_the_raw_calibration"
        ],
    ),
    "intrinsics-resize-without-half-pixel": (
        "src/r2sdepth/data/kitti.py",
        "    K2[0, 2] = (K[0, 2] + 0.5) * sx - 0.5",
        "    K2[0, 2] = K[0, 2] * sx",
        ["tests/test_references.py::test_resized_intrinsics_put_a_point_where_the_resized_image_shows_it"],
    ),
    "eval-resize-in-depth-not-disparity": (
        "src/r2sdepth/evaluate.py",
        "    disp = cv2.resize(disp, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)",
        "    disp = 1.0 / cv2.resize(pred_depth, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)",
        ["tests/test_references.py::test_evaluation_resizes_predictions_bilinearly_in_disparity"],
    ),
    "flat-road-horizon-off-by-half": (
        "src/r2sdepth/evaluate.py",
        "    dv = np.arange(h, dtype=np.float64) - cy",
        "    dv = np.arange(h, dtype=np.float64) + 0.5 - cy",
        ["tests/test_kitti_eval.py::test_flat_road_prior_by_hand"],
    ),
    "flat-road-baseline-other-intrinsics": (
        "src/r2sdepth/evaluate.py",
        "                Ks_gt = split_intrinsics(self.data, self.split, [g.shape[-2:] for g in gts])",
        "                Ks_gt = split_intrinsics(self.data, self.split, [(192, 640) for g in gts])",
        ["tests/test_kitti_eval.py::test_eval_baselines_on_real_kitti_match_an_outside_figure"],
    ),
    "second-last-checkpoint-file": (
        "src/r2sdepth/train/run.py",
        '"save_top_k": 0, "enable_version_counter": False}',
        '"save_top_k": 0, "enable_version_counter": True}',
        ["tests/test_reliability.py::test_sigkill_resume_equals_uninterrupted_run"],
    ),
    "colour-bar-labels-packed": (
        "src/r2sdepth/viz.py",
        "    gap = max(label_h + 1, height // 7)",
        "    gap = 2",
        ["tests/test_figures.py::test_colour_bar_labels_never_overprint_at_the_shipped_sizes"],
    ),
    "lightning-adverts-shown": (
        "src/r2sdepth/train/run.py",
        "    quiet_lightning()\n    out = Path(out)",
        "    out = Path(out)",
        ["tests/test_train.py::test_end_to_end_synth_build_train_eval_resume"],
    ),
    "extended-run-restarts-the-epoch": (
        "src/r2sdepth/train/run.py",
        "    if final.saved_at == trainer.global_step:\n",
        "    if False:\n",
        ["tests/test_reliability.py::test_raising_max_steps_on_a_finished_run_continues_it_exactly"],
    ),
    "tfi-next-spike-at-or-after": (
        "src/r2sdepth/spike/reconstruct.py",
        "    after[:-1] = nxt[1:]\n    after[-1] = t\n",
        "    after[:] = nxt\n",
        ["tests/test_properties.py::test_tfi_and_tfp_match_plain_loops_at_any_index"],
    ),
    "tfi-interval-plus-one": (
        "src/r2sdepth/spike/reconstruct.py",
        "        interval = np.where(has_prev & has_next, nxt - prev, t)",
        "        interval = np.where(has_prev & has_next, nxt - prev + 1, t)",
        ["tests/test_properties.py::test_tfi_and_tfp_match_plain_loops_at_any_index"],
    ),
    "centred-window-rounds-the-other-way": (
        "src/r2sdepth/spike/io.py",
        "        return frame_plane - length // 2",
        "        return frame_plane - (length + 1) // 2",
        ["tests/test_properties.py::test_window_start_for_any_length"],
    ),
    "torch-backend-without-dark-current": (
        "src/r2sdepth/spike/simulate.py",
        "                v += self.p.dark_current\n",
        "                pass\n",
        [
            "tests/test_simulate.py::test_firing_rate_of_a_constant_image_is_gain_l_plus_dark_over_theta_on_every_backend"
        ],
    ),
    "torch-backend-without-fixed-pattern-noise": (
        "src/r2sdepth/spike/simulate.py",
        "                v -= th * s\n",
        "                v -= self.p.threshold * s\n",
        [
            "tests/test_simulate.py::test_firing_rate_of_a_constant_image_is_gain_l_plus_dark_over_theta_on_every_backend"
        ],
    ),
    "shot-noise-path-without-dark-current": (
        "src/r2sdepth/spike/simulate.py",
        "                if dark:\n                    v += dark\n",
        "                pass\n",
        [
            "tests/test_simulate.py::test_firing_rate_of_a_constant_image_is_gain_l_plus_dark_over_theta_on_every_backend"
        ],
    ),
    "video-read-by-imageio-only": (
        "src/r2sdepth/frames.py",
        "    cap = cv2.VideoCapture(str(path))\n",
        "    cap = cv2.VideoCapture()\n",
        ["tests/test_live_input.py::test_a_video_is_read_with_opencv_without_extras"],
    ),
    "final-checkpoint-moved-on-every-rank": (
        "src/r2sdepth/train/run.py",
        "        if trainer.is_global_zero:  # rank 0 alone wrote it (trainer.save_checkpoint)\n",
        "        if True:\n",
        ["tests/test_reliability.py::test_a_ddp_run_ending_by_max_steps_finishes_on_every_rank"],
    ),
    "noop-rerun-overwrites-last-checkpoint": (
        "src/r2sdepth/train/run.py",
        "    elif trainer.global_step > resume_step or not resumed:",
        "    elif True:",
        ["tests/test_reliability.py::test_raising_max_steps_on_a_finished_run_continues_it_exactly"],
    ),
    "camera-height-largest-plane": (
        "src/r2sdepth/metric.py",
        "int(np.sum(np.abs(r) < tol)) - int(np.sum(r > tol))",
        "int(np.sum(np.abs(r) < tol))",
        ["tests/test_metric.py::test_camera_height_takes_the_lowest_surface_not_the_largest"],
    ),
    "camera-height-run-per-image": (
        "src/r2sdepth/evaluate.py",
        "fill if (f is None or per_run) else f",
        "fill if f is None else f",
        ["tests/test_metric.py::test_camera_height_run_uses_one_factor_for_every_image"],
    ),
    "stereo-flip-keeps-baseline-sign": (
        "src/r2sdepth/data/dataset.py",
        "            T[0, 3] = -T[0, 3]\n",
        "            T[0, 3] = T[0, 3]\n",
        ["tests/test_metric.py::test_stereo_source_warps_the_right_view_onto_the_left"],
    ),
    "stereo-transform-reversed": (
        "src/r2sdepth/data/kitti.py",
        "t = np.linalg.solve(b.K, b.P_rect[:, 3]) - np.linalg.solve(a.K, a.P_rect[:, 3])",
        "t = np.linalg.solve(a.K, a.P_rect[:, 3]) - np.linalg.solve(b.K, b.P_rect[:, 3])",
        ["tests/test_metric.py::test_stereo_source_warps_the_right_view_onto_the_left"],
    ),
    "stereo-view-not-a-source": (
        "src/r2sdepth/train/module.py",
        '        return [*sources, batch["color_stereo"]], [*poses, batch["T_stereo"].float()]',
        "        return sources, poses",
        [
            "tests/test_metric.py::test_stereo_view_is_a_source_of_the_photometric_loss",
            "tests/test_metric.py::test_metric_recipes_train_through_a_real_fit",
        ],
    ),
    "velocity-squared-distance": (
        "src/r2sdepth/losses.py",
        "loss = loss + (t.norm(dim=-1) - travel.to(t.dtype)).abs().mean()",
        "loss = loss + (t.pow(2).sum(-1) - travel.to(t.dtype)).abs().mean()",
        ["tests/test_metric.py::test_velocity_loss_by_hand"],
    ),
    "velocity-forward-unsigned": (
        "src/r2sdepth/losses.py",
        "loss = loss + (t[..., 2] + forward.to(t.dtype)).abs().mean()",
        "loss = loss + (t[..., 2].abs() - forward.to(t.dtype).abs()).abs().mean()",
        ["tests/test_metric.py::test_velocity_loss_by_hand"],
    ),
    "speed-scale-moves-backwards": (
        "src/r2sdepth/metric.py",
        "                T[:, 2, 3] = -forward[i, j]",
        "                T[:, 2, 3] = forward[i, j]",
        ["tests/test_metric.py::test_speed_scale_recovers_a_known_scale_from_exact_depth"],
    ),
    "speed-scale-worst-source": (
        "src/r2sdepth/metric.py",
        "                best = err if best is None else torch.minimum(best, err)",
        "                best = err if best is None else torch.maximum(best, err)",
        ["tests/test_metric.py::test_speed_scale_recovers_a_known_scale_from_exact_depth"],
    ),
    "depth-scale-on-the-far-limit-only": (
        "src/r2sdepth/export.py",
        '    return {**cfg, "min_depth": cfg["min_depth"] * factor, "max_depth": cfg["max_depth"] * factor}',
        '    return {**cfg, "min_depth": cfg["min_depth"], "max_depth": cfg["max_depth"] * factor}',
        ["tests/test_metric.py::test_speed_scale_through_the_cli_makes_a_metric_copy"],
    ),
    "scaled-ensemble-members-unscaled": (
        "src/r2sdepth/export.py",
        '            meta["ensemble"] = [m | {"model": _scaled_range(m["model"], depth_scale)} for m in members]',
        '            meta["ensemble"] = members',
        ["tests/test_metric.py::test_depth_scale_of_an_ensemble_scales_it_and_each_member"],
    ),
    "luminance-red-and-green-weights-swapped": (
        "src/r2sdepth/spike/simulate.py",
        "return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114).astype(np.float32)",
        "return (x[..., 0] * 0.587 + x[..., 1] * 0.299 + x[..., 2] * 0.114).astype(np.float32)",
        ["tests/test_simulate_by_hand.py::test_luminance_bt601_by_hand_for_every_input_kind"],
    ),
    "camera-rate-plane-midpoint-off-by-one": (
        "src/r2sdepth/spike/simulate.py",
        "    return 1.0 - span + span * (k + 0.5) / planes",
        "    return 1.0 - span + span * (k - 0.5) / planes",
        ["tests/test_simulate_by_hand.py::test_plane_fraction_by_hand"],
    ),
    "camera-rate-ramp-over-the-whole-interval": (
        "src/r2sdepth/spike/simulate.py",
        "    step = (g * span / np.float32(self.p.planes_per_frame)) * (l1 - l0)",
        "    step = (g / np.float32(self.p.planes_per_frame)) * (l1 - l0)",
        ["tests/test_simulate_by_hand.py::test_integrate_and_fire_against_a_plain_loop"],
    ),
    "torch-reset-keeps-the-firing-pixels": (
        "src/r2sdepth/spike/simulate.py",
        "            v *= ~s",
        "            v *= s",
        ["tests/test_simulate_by_hand.py::test_integrate_and_fire_against_a_plain_loop"],
    ),
    "flow-interpolation-weights-swapped": (
        "src/r2sdepth/spike/simulate.py",
        "        return (1 - a) * w0 + a * w1",
        "        return a * w0 + (1 - a) * w1",
        ["tests/test_simulate_by_hand.py::test_flow_interpolation_moves_the_picture_along_its_motion"],
    ),
    "velocity-both-without-the-length-term": (
        "src/r2sdepth/losses.py",
        '    if axis in ("norm", "both"):',
        '    if axis == "norm":',
        ["tests/test_metric.py::test_velocity_loss_by_hand"],
    ),
    "heading-from-the-wrong-column": (
        "src/r2sdepth/data/kitti.py",
        'poses, forward = read_poses(d / "poses.txt"), 2',
        'poses, forward = read_poses(d / "poses.txt"), 0',
        ["tests/test_metric.py::test_travel_distances_from_poses"],
    ),
    "velocity-forward-given-the-distances": (
        "src/r2sdepth/train/module.py",
        'velocity_loss(poses, batch["travel"], axis, batch.get("travel_forward"))',
        'velocity_loss(poses, batch["travel"], axis, batch["travel"])',
        ["tests/test_metric.py::test_velocity_term_in_the_stage1_loss_after_its_warmup"],
    ),
    "travel-from-wrong-frame": (
        "src/r2sdepth/data/dataset.py",
        "moves = [pos[at(frame + o)] - pos[t] for o in self.context]",
        "moves = [pos[at(frame + 2 * o)] - pos[t] for o in self.context]",
        ["tests/test_metric.py::test_travel_distances_from_poses"],
    ),
    "velocity-warmup-ignored": (
        "src/r2sdepth/train/module.py",
        "if wv > 0 and train and warm:",
        "if wv > 0 and train:",
        ["tests/test_metric.py::test_velocity_term_in_the_stage1_loss_after_its_warmup"],
    ),
    "velocity-weight-not-applied": (
        "src/r2sdepth/train/module.py",
        'res["loss"] = res["loss"] + wv * res["velocity"]',
        'res["loss"] = res["loss"] + res["velocity"]',
        ["tests/test_metric.py::test_velocity_term_in_the_stage1_loss_after_its_warmup"],
    ),
    "known-speed-wrong-frame": (
        "src/r2sdepth/train/module.py",
        'poses = [rescale_translation(T, batch["travel"][:, j]) for j, T in enumerate(poses)]',
        'poses = [rescale_translation(T, batch["travel"][:, 0]) for j, T in enumerate(poses)]',
        ["tests/test_metric.py::test_known_speed_poses_have_the_distances_travelled"],
    ),
    "rescale-translation-not-normalised": (
        "src/r2sdepth/geometry.py",
        "out[:, :3, 3] = t * (distance.to(t.dtype)[:, None] / n.clamp_min(eps))",
        "out[:, :3, 3] = t * distance.to(t.dtype)[:, None]",
        ["tests/test_metric.py::test_rescale_translation_by_hand"],
    ),
    "stereo-calibration-read-per-sample": (
        "src/r2sdepth/data/dataset.py",
        "        if key not in self._stereo_T:",
        "        if True:",
        ["tests/test_metric.py::test_stereo_calibration_and_poses_are_read_once_per_drive"],
    ),
    "metric-backproject-transposed-intrinsics": (
        "src/r2sdepth/metric.py",
        "np.linalg.inv(np.asarray(K, np.float64))",
        "np.linalg.inv(np.asarray(K, np.float64).T)",
        [
            "tests/test_metric.py::test_camera_height_recovers_a_known_scale",
            "tests/test_metric.py::test_ply_round_trip_reproduces_the_depth_pixels",
        ],
    ),
    "velocity-not-logged": (
        "src/r2sdepth/train/module.py",
        'LOG_TERMS: tuple[str, ...] = ("photo_student", "depth_sup", "velocity", "trust")',
        'LOG_TERMS: tuple[str, ...] = ("photo_student", "depth_sup", "trust")',
        ["tests/test_metric.py::test_metric_recipes_train_through_a_real_fit"],
    ),
    "ply-colour-channels-swapped": (
        "src/r2sdepth/pointcloud.py",
        'v["red"], v["green"], v["blue"] = np.asarray(colors, np.uint8).T',
        'v["blue"], v["green"], v["red"] = np.asarray(colors, np.uint8).T',
        ["tests/test_metric.py::test_ply_round_trip_reproduces_the_depth_pixels"],
    ),
    "camera-rate-window-at-interval-start": (
        "src/r2sdepth/spike/simulate.py",
        "    return 1.0 - span + span * (k + 0.5) / planes",
        "    return span * (k + 0.5) / planes",
        ["tests/test_real_camera.py::test_camera_rate_light_of_every_path_is_taken_at_the_plane_midpoint"],
    ),
    "camera-rate-ramp-start-missing": (
        "src/r2sdepth/spike/simulate.py",
        "        return g * (l0 + (np.float32(1) - span) * (l1 - l0)) + dark - np.float32(0.5) * step, step",
        "        return g * l0 + dark - np.float32(0.5) * step, step",
        ["tests/test_real_camera.py::test_camera_rate_chunk_matches_a_plain_loop"],
    ),
    "dat-header-after-plane": (
        "src/r2sdepth/spike/io.py",
        "self._mm = self._raw[:, self.header_bytes :] if self.header_bytes else self._raw",
        "self._mm = self._raw[:, : self.frame_nbytes] if self.header_bytes else self._raw",
        ["tests/test_real_camera.py::test_dat_variants_decode_exactly"],
    ),
    "dat-row-offset-before-flip": (
        "src/r2sdepth/spike/io.py",
        "        if flipud:\n            rows = rows[:, ::-1, :]\n        if (hst, row0) != (height, 0):",
        "        if (hst, row0) != (height, 0):",
        ["tests/test_real_camera.py::test_dat_variants_decode_exactly"],
    ),
    "dat-partial-not-reported": (
        "src/r2sdepth/spike/io.py",
        "        self.ignored_bytes = rem\n",
        "        self.ignored_bytes = 0\n",
        ["tests/test_real_camera.py::test_incomplete_last_plane_refused_or_read_with_allow_partial"],
    ),
    "dat-stride-without-header": (
        "src/r2sdepth/spike/io.py",
        "        n, rem = divmod(size, self.plane_stride)",
        "        n, rem = divmod(size, self.frame_nbytes)",
        ["tests/test_real_camera.py::test_dat_variants_decode_exactly"],
    ),
    "probe-ignores-bit-seam": (
        "src/r2sdepth/spike/io.py",
        "    return float(c / seam if c > 0 and seam > 1 else c)",
        "    return float(c)",
        [
            "tests/test_real_camera.py::test_probe_ranks_the_true_layout_first_and_cli_warns_on_the_wrong_way_round"
        ],
    ),
    "fit-fpn-without-sqrt2": (
        "src/r2sdepth/spike/fit.py",
        "d - np.median(d)))) / math.sqrt(2.0)",
        "d - np.median(d))))",
        ["tests/test_real_camera.py::test_fit_sim_recovers_known_camera_parameters"],
    ),
    "fit-gain-ignores-threshold": (
        "src/r2sdepth/spike/fit.py",
        '"gain": float(a * threshold)',
        '"gain": float(a)',
        ["tests/test_real_camera.py::test_fit_sim_recovers_known_camera_parameters"],
    ),
    "window-multiple-of-chunks-only": (
        "src/r2sdepth/checkpoint.py",
        '    per = int(rep.get("chunks", 4)) * int(rep.get("bins", 8))',
        '    per = int(rep.get("chunks", 4))',
        ["tests/test_real_camera.py::test_infer_refuses_windows_the_network_cannot_take_and_warns_on_rate"],
    ),
    "rate-warning-never": (
        "src/r2sdepth/checkpoint.py",
        "    if 1 / RATE_TOLERANCE <= ratio <= RATE_TOLERANCE:",
        "    if True:",
        ["tests/test_real_camera.py::test_infer_refuses_windows_the_network_cannot_take_and_warns_on_rate"],
    ),
    "device-jitter-skipped": (
        "src/r2sdepth/data/transport.py",
        "            aug[on] = color_jitter(color[on], params[on])",
        "            aug[on] = color[on]",
        [
            "tests/test_transport.py::test_device_transport_gives_the_plain_samples",
            "tests/test_transport.py::test_a_real_fit_learns_the_same_with_either_transport",
        ],
    ),
    "unpack-bit-order-reversed": (
        "src/r2sdepth/data/transport.py",
        "shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)",
        "shifts = torch.arange(0, 8, 1, device=packed.device, dtype=torch.uint8)",
        ["tests/test_transport.py::test_unpack_on_the_device_equals_the_readers_decode"],
    ),
    "hue-shift-sign": (
        "src/r2sdepth/data/transport.py",
        "hue = torch.remainder(hue + shift, 1.0)",
        "hue = torch.remainder(hue - shift, 1.0)",
        ["tests/test_transport.py::test_batched_jitter_equals_torchvision_per_sample"],
    ),
    "contrast-mean-over-the-batch": (
        "src/r2sdepth/data/transport.py",
        "mean = _gray(x).mean(dim=(-3, -2, -1), keepdim=True)",
        "mean = _gray(x).mean()",
        ["tests/test_transport.py::test_batched_jitter_equals_torchvision_per_sample"],
    ),
    "external-alignment-direction-swapped": (
        "src/r2sdepth/train/distill.py",
        "            nt, _, _ = affine_normalise(tmap)\n            _, shift, scale = affine_normalise(sdisp)",
        "            nt, _, _ = affine_normalise(sdisp)\n            _, shift, scale = affine_normalise(tmap)",
        ["tests/test_external_teacher.py::test_teacher_map_aligned_to_the_students_units"],
    ),
    "external-depth-ratio-inverted": (
        "src/r2sdepth/train/distill.py",
        "ratio = sdepth.flatten(1).median(1).values / tmap.flatten(1).median(1).values.clamp_min(1e-8)",
        "ratio = tmap.flatten(1).median(1).values / sdepth.flatten(1).median(1).values.clamp_min(1e-8)",
        ["tests/test_external_teacher.py::test_teacher_map_aligned_to_the_students_units"],
    ),
    "external-imagenet-norm-skipped": (
        "src/r2sdepth/models/external.py",
        '        if self.spec["input"] == "imagenet":',
        '        if self.spec["input"] == "imagenet-never":',
        ["tests/test_external_teacher.py::test_input_normalisation_size_and_output_forms_by_hand"],
    ),
    "external-sha-not-checked": (
        "src/r2sdepth/models/external.py",
        'if spec.get("sha256") and (not Path(path).is_file() or file_sha256(path) != spec["sha256"]):',
        "if False:",
        ["tests/test_external_teacher.py::test_bad_teacher_files_are_one_line_errors"],
    ),
    "external-resume-ignores-sha": (
        "src/r2sdepth/train/run.py",
        'if was != t_state["external"]["sha256"] and not allow_config_change:',
        "if False:",
        ["tests/test_external_teacher.py::test_distill_from_an_onnx_teacher_through_the_cli"],
    ),
    "external-weights-in-state-dict": (
        "src/r2sdepth/models/external.py",
        '        if name == "_impl":',
        '        if name == "_never":',
        ["tests/test_external_teacher.py::test_an_exported_rgb_model_teaches_its_own_disparity"],
    ),
    "ssi-sign-invariant": (
        "src/r2sdepth/losses.py",
        "    per = (w * (ns - nt).abs()).sum(dims) / wsum.clamp_min(1e-12)",
        "    per = (w * (ns.abs() - nt.abs()).abs()).sum(dims) / wsum.clamp_min(1e-12)",
        ["tests/test_external_teacher.py::test_ssi_loss_ignores_the_teachers_units_but_not_its_sign"],
    ),
    "normalise-unweighted": (
        "src/r2sdepth/losses.py",
        "    w = torch.ones_like(x) if weight is None else weight.to(x.dtype)",
        "    w = torch.ones_like(x)",
        ["tests/test_external_teacher.py::test_affine_normalise_by_hand_with_weights"],
    ),
    "normalise-std-for-mad": (
        "src/r2sdepth/losses.py",
        "    scale = ((w * (x - shift.view(-1, 1, 1, 1)).abs()).sum(dims) / sw).clamp_min(1e-8)",
        "    scale = ((w * (x - shift.view(-1, 1, 1, 1)) ** 2).sum(dims) / sw).sqrt().clamp_min(1e-8)",
        ["tests/test_external_teacher.py::test_affine_normalise_by_hand_with_weights"],
    ),
    "reconstruction-stretch-global": (
        "src/r2sdepth/spike/reconstruct.py",
        "    hi = np.percentile(flat, percentile, axis=1).astype(np.float32)",
        "    hi = np.full(len(flat), np.percentile(flat, percentile), np.float32)",
        ["tests/test_reconstructed_baseline.py::test_stretch_per_image_by_hand"],
    ),
    "reconstruction-method-ignored": (
        "src/r2sdepth/infer.py",
        '    img = tfp(s) if method == "tfp" else tfi(s)',
        "    img = tfp(s)",
        ["tests/test_reconstructed_baseline.py::test_rgb_network_on_the_reconstruction_by_hand"],
    ),
    "depth-png-invalid-as-1m": (
        "src/r2sdepth/data/kitti.py",
        "    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)",
        "    d = np.where(np.isfinite(d) & (d > 0), d, 1.0)",
        ["tests/test_references.py::test_depth_png_is_the_kitti_devkit_format_for_every_kind_of_value"],
    ),
    "depth-png-inf-kept": (
        "src/r2sdepth/data/kitti.py",
        "    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)",
        "    d = np.where(~np.isnan(d) & (d > 0), d, 0.0)",
        ["tests/test_references.py::test_depth_png_is_the_kitti_devkit_format_for_every_kind_of_value"],
    ),
    "depth-png-wraps-past-256m": (
        "src/r2sdepth/data/kitti.py",
        "    save_png(path, np.clip(np.rint(d * 256.0), 0, 65535).astype(np.uint16))",
        "    save_png(path, np.rint(d * 256.0).astype(np.uint16))",
        ["tests/test_references.py::test_depth_png_is_the_kitti_devkit_format_for_every_kind_of_value"],
    ),
    "depth-png-drops-under-1m": (
        "src/r2sdepth/data/kitti.py",
        "    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)",
        "    d = np.where(np.isfinite(d) & (d >= 1), d, 0.0)",
        ["tests/test_references.py::test_depth_png_is_the_kitti_devkit_format_for_every_kind_of_value"],
    ),
    "velodyne-row-0-dropped": (
        "src/r2sdepth/data/kitti.py",
        "    inb = (u >= 0) & (v >= 0) & (u < w) & (v < h)",
        "    inb = (u >= 0) & (v > 0) & (u < w) & (v < h)",
        ["tests/test_references.py::test_velodyne_projection_by_hand_at_the_image_edges"],
    ),
    "velodyne-farther-point-wins": (
        "src/r2sdepth/data/kitti.py",
        "    depth = np.full(h * w, np.inf)\n    np.minimum.at(depth, v * w + u, d)",
        "    depth = np.full(h * w, np.inf)\n    depth[v * w + u] = d",
        ["tests/test_references.py::test_velodyne_projection_by_hand_at_the_image_edges"],
    ),
    "velodyne-near-points-dropped": (
        "src/r2sdepth/data/kitti.py",
        "    ok = z > 0\n",
        "    ok = z > 1\n",
        ["tests/test_references.py::test_velodyne_projection_by_hand_at_the_image_edges"],
    ),
    "fpn-drawn-per-chunk": (
        "src/r2sdepth/spike/simulate.py",
        '        fpn_seed=stable_seed(seed, sequence, "fpn"),',
        "        fpn_seed=stable_seed(seed, sequence, int(frame), 'fpn'),",
        ["tests/test_simulate.py::test_fixed_pattern_noise_is_one_map_per_camera_across_chunks"],
    ),
    "fpn-shared-by-every-sequence": (
        "src/r2sdepth/spike/simulate.py",
        '        fpn_seed=stable_seed(seed, sequence, "fpn"),',
        '        fpn_seed=stable_seed(seed, "fpn"),',
        ["tests/test_simulate.py::test_fixed_pattern_noise_is_one_map_per_camera_across_chunks"],
    ),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="mutation names (default: all)")
    ap.add_argument("--work", help="folder for the copy (default: a temporary one)")
    a = ap.parse_args()
    names = a.only or list(MUTATIONS)
    work = Path(a.work or tempfile.mkdtemp(prefix="r2sdepth-mut-"))
    if work.exists():
        shutil.rmtree(work)

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {
            n
            for n in names
            if n in (".git", ".venv", "__pycache__", ".pytest_cache")
            or (top and n in ("runs", "data", "r2sdepth-demo"))
        }

    shutil.copytree(ROOT, work, ignore=ignore)
    shared = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "R2SDEPTH_SHARED_DATA": str(shared)}
    missed = []
    for name in names:
        path, old, new, tests = MUTATIONS[name]
        f = work / path
        text = f.read_text()
        if text.count(old) != 1:
            print(f"{name:34s} NOT APPLICABLE (the guarded text is not in {path} exactly once)")
            missed.append(name)
            continue
        f.write_text(text.replace(old, new))
        t0 = time.time()
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-rs", *tests],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        f.write_text(text)
        verdict = (
            "caught" if r.returncode == 1 else ("MISSED" if r.returncode == 0 else f"ERROR rc={r.returncode}")
        )
        if verdict == "MISSED" and "skipped" in r.stdout:
            verdict = "SKIPPED"  # a guarding test did not run: not evidence either way
        if verdict.startswith("ERROR"):
            print(r.stdout[-1500:], r.stderr[-1500:])
        if verdict != "caught":
            missed.append(name)
        print(f"{name:34s} {verdict:8s} {time.time() - t0:6.1f} s", flush=True)
    print(f"{len(names) - len(missed)}/{len(names)} mutations caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
