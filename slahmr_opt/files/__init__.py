"""File safety shared by every reader and writer: bounded, typed loading of untrusted npz / npy /
json / table files with one-line errors naming the file (``checks``), a restricted unpickler for
the pickles other tools write (``safe_pickle``), and the one atomic writer (``checks.write_atomic``)
with the usual permissions. Depends on ``errors`` only, so ``body``, ``inputs``, ``io`` and
``render`` can all use it without importing each other."""
