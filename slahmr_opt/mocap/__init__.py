"""Motion capture as ground truth: BVH files, SMPL joint targets, and the body fit to 3D joints."""
