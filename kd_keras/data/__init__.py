"""The data layer: MixedWM38 and WM-811K files, resizing, the label codec, synthetic maps and splits.

Everything here needs only NumPy and h5py; the TensorFlow input pipeline lives in
`kd_keras.data.pipeline` so that inspecting a file does not start TensorFlow.

Example:

>>> data = generate_wafer_maps(380, seed=0)
>>> parts = split_data(data, seed=0)
>>> {name: len(part) for name, part in parts.items()}
{'train': 304, 'val': 38, 'test': 38, 'test_rotated': 38}
"""

from kd_keras.data.cache import load_mixedwm38_cached, read_arrays, write_arrays
from kd_keras.data.labels import (
    DEFECT_ABBREVIATIONS, DEFECT_NAMES, NUM_DEFECTS, NUM_PATTERNS, PATTERN_NAMES, PATTERNS, InvalidLabelError,
    decode_patterns, encode_patterns, flags_name, parse_pattern_name, pattern_name,
)
from kd_keras.data.mixedwm38 import (
    DIE_VALUE_NAMES, FAILED_DIE, GOOD_DIE, MAP_SIZE, OFF_WAFER, VIEWS, WaferMaps, describe,
    dihedral_views, load_mixedwm38, model_input, save_mixedwm38, segmentation_masks,
)
from kd_keras.data.layouts import file_layout, load_unlabelled_maps, load_wafer_maps
from kd_keras.data.npz import WaferDataError
from kd_keras.data.resize import DEFAULT_RESIZE, RESIZE_METHODS, resize_map, resize_maps
from kd_keras.data.splits import (
    DEFAULT_FRACTIONS, DEFAULT_SYNTHETIC_MAPS, Split, data_paths, load_splits, read_suspects, split_data,
    stratified_split,
)
from kd_keras.data.synthetic import draw_fab_map, draw_wafer_map, generate_fab_maps, generate_wafer_maps
from kd_keras.data.wm811k import (
    CLASS_NAMES, FabMaps, describe_wm811k, load_unlabelled, load_wm811k, save_unlabelled, save_wm811k,
)
