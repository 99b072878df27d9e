"""Datasets: KITTI raw (:mod:`.kitti`), synthetic scenes (:mod:`.synthetic`), Spike-KITTI
(:mod:`.spike_kitti`)."""
