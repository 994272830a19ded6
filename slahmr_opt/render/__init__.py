"""``slahmr-opt render``: fitted meshes over the input frames, beside a world view, as an mp4.

Modules: ``scene`` (geometry, numpy only), ``backend`` (pyrender/OSMesa, imported lazily),
``render`` (the frame loop); the command is ``slahmr_opt.cli.render``. Frames come in and H.264
goes out through ``files.video``, shared with the video front end.
"""
