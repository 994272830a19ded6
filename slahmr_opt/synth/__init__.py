"""Synthetic benchmarks: fitted mocap bodies filmed by synthetic cameras, with detector-like
keypoints, SLAM-like cameras and points, regressor-like guesses, and rendered videos."""
