"""Files, read and written safely, shared by every reader and writer: bounded, typed loading of
untrusted npz / npy / json / table files with one-line errors naming the file (``checks``), a
restricted unpickler for the pickles other tools write (``safe_pickle``), the one atomic writer
(``checks.write_atomic``) with the usual permissions, and video frames in and H.264 out
(``video``, for the front end and the renderer). Depends on ``errors`` only, so ``body``,
``inputs``, ``io``, ``frontend`` and ``render`` can all use it without importing each other."""
