"""``slahmr-opt render``: fitted meshes over the input frames, beside a world view, as an mp4.

Modules: ``scene`` (geometry, numpy only), ``backend`` (pyrender/OSMesa, imported lazily),
``video_io`` (frames in, H.264 out), ``render`` (the frame loop), ``render_cli`` (the command).
"""
