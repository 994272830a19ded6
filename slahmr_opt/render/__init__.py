"""``slahmr-opt render``: fitted meshes over the input frames, beside a world view, as an mp4.

Modules: ``scene`` (geometry, numpy only), ``backend`` (pyrender/OSMesa, imported lazily),
``render`` (the frame loop), ``render_cli`` (the command); frames come in and H.264 goes out
through ``files.video``, shared with the video front end.
"""
