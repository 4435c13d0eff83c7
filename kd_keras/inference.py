"""A float Keras model run on raw wafer maps: the one place maps enter a model for prediction.

Example:

>>> import numpy as np
>>> from kd_keras.models import build_student
>>> predict(build_student("net2", seed=0), np.ones((3, 52, 52), np.uint8)).shape
(3, 8)
"""

from kd_keras.data.pipeline import make_dataset

BATCH_SIZE = 512


def predict(model, maps, batch_size=BATCH_SIZE, verbose=0):
    """The model's outputs on raw (N, 52, 52) die maps: an array, or a dict of them for a
    model with named outputs."""
    return model.predict(make_dataset(maps, batch_size=batch_size), verbose=verbose)
