"""Exports of a fitted ``results.npz`` for other tools (``slahmr-opt export``).

==========  =============================================================================
format      content
==========  =============================================================================
glb         one glTF 2.0 binary: a skinned, animated mesh per person (SMPL skeleton, rest
            mesh at the person's betas), the camera path and frustums (``glb``)
bvh         one BVH per person: SMPL's 24-joint skeleton, metres or cm (``bvh``)
tum         the camera trajectory, camera-to-world, ``timestamp tx ty tz qx qy qz qw``
            (``camera_path``)
obj, ply    one posed mesh per person and frame (``meshes``)
==========  =============================================================================

GLB, BVH and meshes are y-up (``motion.export_world_rotation``); TUM is in the result's world.
"""

from slahmr_opt.io.export.bvh import bvh_text, export_bvh
from slahmr_opt.io.export.camera_path import export_tum, tum_timestamps
from slahmr_opt.io.export.glb import build_glb, export_glb
from slahmr_opt.io.export.meshes import MESH_FORMATS, export_meshes
from slahmr_opt.io.export.motion import PersonMotion, export_world_rotation, person_motions

__all__ = [
    "MESH_FORMATS",
    "PersonMotion",
    "build_glb",
    "bvh_text",
    "export_bvh",
    "export_glb",
    "export_meshes",
    "export_tum",
    "export_world_rotation",
    "person_motions",
    "tum_timestamps",
]
