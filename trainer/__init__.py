"""Host-side training: data to a calibrated autoencoder to a versioned bundle.

Uses TensorFlow (``edgewatch[train]``), imported lazily inside the functions
that need it. May use ``edge_runtime`` for the bundle format and scoring math.
"""
