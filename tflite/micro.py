"""An int8 model as the toolkit runs it: in TensorFlow Lite Micro's interpreter, and in LiteRT's.

`Int8Model` reads a full-integer `.tflite` once (its input quantization, each output's kind
and quantization, its ops, its task) and keeps one interpreter of each kind for all its work.

Example:

>>> import numpy as np
>>> from kd_keras.models import build_student
>>> from tflite.quantize import convert_int8
>>> model = Int8Model(convert_int8(build_student("net2", seed=0), np.ones((4, 52, 52), np.uint8)))
>>> model.task.name, model.quantize(np.array([[[0, 1, 2]]])).tolist()
('classify', [[[-128, -1, 126]]])
>>> 10_000 < model.arena_bytes() < 64_000
True
"""

import re

import numpy as np

from kd_keras.framework_output import captured_c_stderr
from kd_keras.tasks import MULTILABEL, task_of_output_shapes

# Arena for measuring and running: generous, then the recording allocator reports what was used.
MEASURE_ARENA_BYTES = 4 * 1024 * 1024


def litert_interpreter(flatbuffer, reference_kernels=True):
    """A LiteRT interpreter; reference kernels (no XNNPACK) compute what TFLite Micro computes."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    interpreter = Interpreter(model_content=bytes(flatbuffer), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def micro_interpreter(flatbuffer, arena_size=MEASURE_ARENA_BYTES):
    """A TensorFlow Lite Micro interpreter (its Python binding) for the model."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(bytes(flatbuffer), arena_size=arena_size)


def quantize_maps(maps, quantization):
    """Raw die maps (0/1/2) -> int8 model input, exactly as a firmware must do it."""
    scale, zero_point = quantization
    return np.clip(np.round(np.asarray(maps, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(values, quantization):
    scale, zero_point = quantization
    return (np.asarray(values, np.float64) - zero_point) * scale


class Int8Model:
    """A full-integer `.tflite` model and what the toolkit reads off it, parsed once.

    Attributes: `flatbuffer` (bytes), `input_quantization` ((scale, zero point)),
    `output_quantizations` (one per output, in output order), `task` (`kd_keras.tasks`,
    told by the outputs' shapes; its `output_kinds` name the outputs), `ops` (each node's
    builtin op, in execution order), `thresholds_int8` (a classifier's decision threshold per
    defect, as its card gives them, or None for logit 0)."""

    def __init__(self, flatbuffer, thresholds_int8=None):
        self.flatbuffer = bytes(flatbuffer)
        self.thresholds_int8 = None if thresholds_int8 is None else np.asarray(thresholds_int8, np.float64)
        self._litert = litert_interpreter(self.flatbuffer)
        self._micro = None
        self.input_quantization = self._litert.get_input_details()[0]["quantization"]
        details = self._litert.get_output_details()
        self.task = task_of_output_shapes([tuple(int(n) for n in detail["shape"]) for detail in details])
        self.output_quantizations = [detail["quantization"] for detail in details]
        # LiteRT has no public call for the ops; `_get_ops_details` is what its own tools use.
        self.ops = [op["op_name"] for op in self._litert._get_ops_details()]

    @property
    def kinds(self):
        return self.task.output_kinds

    def quantize(self, maps):
        return quantize_maps(maps, self.input_quantization)

    def run_micro(self, maps):
        """int8 outputs of TFLite Micro for each map: a list (one per output) of (N, ...) arrays."""
        if self._micro is None:
            self._micro = micro_interpreter(self.flatbuffer)
        outputs = [[] for _ in self.kinds]
        for wafer_map in self.quantize(maps)[..., None]:
            self._micro.set_input(wafer_map[None], 0)
            self._micro.invoke()
            for index, collected in enumerate(outputs):
                collected.append(self._micro.get_output(index)[0].copy())
        return [np.stack(o) for o in outputs]

    def run_litert(self, maps):
        """int8 outputs of LiteRT with reference kernels, laid out as `run_micro`'s."""
        index = self._litert.get_input_details()[0]["index"]
        details = self._litert.get_output_details()
        outputs = [[] for _ in details]
        for wafer_map in self.quantize(maps)[..., None]:
            self._litert.set_tensor(index, wafer_map[None])
            self._litert.invoke()
            for collected, detail in zip(outputs, details):
                collected.append(self._litert.get_tensor(detail["index"])[0].copy())
        return [np.stack(o) for o in outputs]

    def from_thresholds(self, logits):
        """{kind: float logits} (a float model's, say) measured from this model's decision
        thresholds, as `dequantized` measures its own: both then decide alike at 0."""
        if self.thresholds_int8 is None or MULTILABEL not in logits:
            return logits
        scale, zero_point = self.output_quantizations[self.kinds.index(MULTILABEL)]
        return {**logits, MULTILABEL: logits[MULTILABEL] - (self.thresholds_int8 - zero_point) * scale}

    def dequantized(self, int8_outputs):
        """{kind: float logits} of int8 outputs (a list, in output order). A classifier's defect
        logits are measured from its `thresholds_int8`, where it has them, as the firmware
        measures them: each defect is then present when its value is above 0."""
        logits = {}
        for kind, values, (scale, zero_point) in zip(self.kinds, int8_outputs, self.output_quantizations, strict=True):
            origin = zero_point if kind != MULTILABEL or self.thresholds_int8 is None else self.thresholds_int8
            logits[kind] = dequantize(values, (scale, origin))
        return logits

    def outputs(self, maps, views=1):
        """{kind: float logits} of TFLite Micro on raw die maps (its int8 outputs, dequantized).

        `views=8`: a classifier's logits averaged over the 8 rotations/flips of each map:
        8 inferences a map, as the firmware runs them when its model_settings.h says kNumViews = 8."""
        return self.task.average_views(lambda view: self.dequantized(self.run_micro(view)), maps, views)

    def same_outputs(self, other, maps):
        """{"tflite_micro": bool, "litert": bool}: whether `other` (an `Int8Model`) gives exactly
        this model's int8 outputs on raw die maps, in each interpreter."""
        return {name: all(np.array_equal(mine, theirs) for mine, theirs in zip(run(self, maps), run(other, maps),
                                                                                 strict=True))
                for name, run in (("tflite_micro", Int8Model.run_micro), ("litert", Int8Model.run_litert))}

    def arena_bytes(self):
        """Tensor-arena bytes TFLite Micro's recording allocator used for this model.

        The interpreter prints its allocations to the C-level stderr only, which is
        captured while it prints."""
        interpreter = micro_interpreter(self.flatbuffer)
        with captured_c_stderr() as output:
            interpreter.print_allocations()
        report = output.text
        match = re.search(r"Arena allocation total (\d+) bytes", report)
        if match is None:
            raise RuntimeError(f"TFLite Micro printed no arena total:\n{report}")
        return int(match.group(1))
