"""Build the firmware stub with TensorFlow Lite Micro and run it: on this machine, or on an
emulated Cortex-M4 board (QEMU's mps2-an386), with the reference or the CMSIS-NN kernels.

`replay` feeds die maps to the firmware's replay build and returns every int8 output it
printed, shaped as `Int8Model.run_micro` returns them, so the two can be compared byte for byte:

    >>> import numpy as np
    >>> parse_replay("map 0 view 0 output 0: 1 -2\\nmap 0 view 0 output 1: 3\\nreplayed 1 maps\\n", 1, 1)
    [array([[[ 1, -2]]], dtype=int8), array([[[3]]], dtype=int8)]

On the Cortex-M4, `footprint` measures the demo's whole image (flash by part, from the linker's
map file; RAM with the stack and heap its run used) and `instructions_per_inference` counts
instructions under QEMU's `-icount` (benchmarks/firmware_footprint.py reports both).

The libraries (TFLite Micro built from source by firmware_stub/tflm.mk) are cached in the build
directory: the first build takes minutes, a model linked against them seconds.
"""

import collections
import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kd_keras.data import dihedral_views
from kd_keras.errors import ToolkitError

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware_stub"
TARGETS = ("host", "cortex-m")
KERNELS = ("reference", "cmsis_nn")
REPLAY_LINE = re.compile(r"map (\d+) view (\d+) output (\d+):((?: -?\d+)*)$")
# board/timer.h: the board's timer runs at 25 MHz; `-icount shift=0` makes an instruction 1 ns.
ICOUNT = "-icount shift=0"
INSTRUCTIONS_PER_TICK = 40
# What a user's flash holds (the image's load sections) and what of it is RAM at run time.
FLASH_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx", ".init_array", ".data")
STATIC_RAM_SECTIONS = (".data", ".bss")
IMAGE_PARTS = ("model", "tflite_micro", "application", "c_runtime")
APPLICATION_OBJECTS = ("main.o", "main_replay.o", "startup.o", "ram_report.o")


class FirmwareError(ToolkitError):
    """The firmware did not build or run: the message names the missing tool, source or step."""


@dataclasses.dataclass(frozen=True)
class Firmware:
    """The firmware stub built for one model, target and kernel set.

    Args:
        model_dir: a directory written by `python -m tflite.convert`.
        target: "host" (built with this machine's compiler, run natively) or "cortex-m" (built
            with arm-none-eabi-g++, run on QEMU's mps2-an386 Cortex-M4 board).
        kernels: "reference" or "cmsis_nn" (Cortex-M only).
        build_dir: where make keeps the library and the images.
    """

    model_dir: Path
    target: str = "host"
    kernels: str = "reference"
    build_dir: Path = FIRMWARE_DIR / "build"

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r}: expected one of {', '.join(TARGETS)}")
        if self.kernels not in KERNELS:
            raise ValueError(f"kernels {self.kernels!r}: expected one of {', '.join(KERNELS)}")
        if self.kernels == "cmsis_nn" and self.target == "host":
            raise ValueError("the CMSIS-NN kernels are for Cortex-M: use target='cortex-m'")

    def make(self, goal, extra=(), timeout=3600):
        """Runs `make goal` in firmware_stub/ for this model (`extra`: more make variables); its
        stdout. FirmwareError with the lines that say why, not the whole make output, on failure."""
        command = ["make", "-s", "-j2", goal, f"MODEL_DIR={Path(self.model_dir).resolve()}",
                   f"BUILD={Path(self.build_dir).resolve()}", f"KERNELS={self.kernels}", *extra]
        try:
            result = subprocess.run(command, cwd=FIRMWARE_DIR, capture_output=True, text=True,
                                    timeout=timeout)
        except FileNotFoundError as error:
            raise FirmwareError(f"make not found: apt-get install make ({error})") from None
        except subprocess.TimeoutExpired:
            raise FirmwareError(f"make {goal} for {self.model_dir} ran past {timeout} s") from None
        if result.returncode != 0:
            raise FirmwareError(f"make {goal} for {self.model_dir} failed (exit {result.returncode}): "
                                f"{why(result.stdout + result.stderr)}")
        return result.stdout

    def demo(self):
        """Builds and runs the demo on its sample map; what it printed."""
        return self.make(self.target)

    @property
    def image_dir(self):
        """Where the Cortex-M4 images and map files of this model and kernel set are built."""
        return Path(self.build_dir) / f"cortex-m4-{self.kernels}" / Path(self.model_dir).resolve().name

    def footprint(self, arena_bytes):
        """The `ImageFootprint` of the Cortex-M4 demo image: its map file, and the stack and heap
        its run used (`arena_bytes`: the model's tensor arena, part of its .bss)."""
        if self.target != "cortex-m":
            raise ValueError("the image footprint is measured for target='cortex-m'")
        printed = self.demo()
        match = re.search(r"stack used: (\d+) bytes; heap used: (\d+) bytes", printed)
        if not match:
            raise FirmwareError(f"the demo did not report its stack and heap: {why(printed)}")
        parts = map_file_parts((self.image_dir / "wafer_stub.map").read_text())
        return ImageFootprint(flash={part: sum(parts[s][part] for s in FLASH_SECTIONS) for part in IMAGE_PARTS},
                              static_ram=sum(sum(parts[s].values()) for s in STATIC_RAM_SECTIONS),
                              arena=arena_bytes, stack=int(match.group(1)), heap=int(match.group(2)))

    def instructions_per_inference(self, maps, views):
        """Instructions one inference executes on the emulated Cortex-M4, the mean over the
        `views` views of `maps`: QEMU's clock tied to instructions (-icount), read through the
        board's timer around each Invoke() (board/timer.h; exact to 40 instructions)."""
        if self.target != "cortex-m":
            raise ValueError("instructions are counted for target='cortex-m'")
        printed = self._replay_printed(maps, [f"QEMU_FLAGS={ICOUNT}"])
        match = re.search(r"(\d+) timer ticks in (\d+) inferences", printed)
        if not match or int(match.group(2)) != len(maps) * views:
            raise FirmwareError(f"the replay did not report its timer: {why(printed)}")
        return int(match.group(1)) * INSTRUCTIONS_PER_TICK / int(match.group(2))

    def replay(self, maps, views, output_shapes):
        """Runs the replay build on die maps (of the model's grid, or of any grid, which the
        firmware resizes by the model's method); the int8 outputs, one array per output, shaped
        (N * views, *output shape): the views of map 0, then of map 1, ..."""
        outputs = parse_replay(self._replay_printed(maps), len(maps), views)
        return [values.reshape(len(maps) * views, *shape) for values, shape in zip(outputs, output_shapes)]

    def _replay_printed(self, maps, extra=()):
        self.make(f"{self.target}-replay")  # build first: what the build prints is not the replay's
        with tempfile.TemporaryDirectory() as folder:
            maps_file = Path(folder) / "maps.txt"
            maps_file.write_text("".join(replay_line(m) for m in maps))
            return self.make(f"{self.target}-replay", extra=[f"MAPS={maps_file}", *extra])


def replay_inputs(maps, views):
    """The model inputs a replay of `maps` runs, in its order (that of `Firmware.replay`'s
    outputs): the first `views` of the 8 rotations/flips of map 0, then of map 1, ..."""
    return np.stack(dihedral_views(maps)[:views], axis=1).reshape(-1, *np.shape(maps)[1:])


def replay_line(die_map):
    """One map of the replay's maps file: its rows and columns, then its dies as digits. Maps
    of another grid than the model's are resized by the firmware (resize_map.h)."""
    die_map = np.asarray(die_map, np.uint8)
    return f"{die_map.shape[0]} {die_map.shape[1]} " + "".join(map(str, die_map.ravel())) + "\n"


@dataclasses.dataclass(frozen=True)
class ImageFootprint:
    """What the firmware image takes on the Cortex-M4, in bytes.

    flash: {part: bytes} of the image's load sections (code, read-only data, .data's initial
        values): the model's C array, TensorFlow Lite Micro (runtime and the kernels linked in),
        the application (main.cc and the board's start-up), and the C/C++ runtime (newlib,
        libstdc++, libgcc; printf is most of it).
    static_ram: .data + .bss, the tensor arena included; arena: the arena alone.
    stack, heap: the peak stack and the heap (printf's buffers) of a run of the demo.
    """

    flash: dict
    static_ram: int
    arena: int
    stack: int
    heap: int

    @property
    def flash_total(self):
        return sum(self.flash.values())

    @property
    def ram_total(self):
        return self.static_ram + self.stack + self.heap

    def to_card(self, instructions_per_inference):
        """The model card's record of this image (`ModelCard.firmware[kernels]`)."""
        return {"flash_bytes": self.flash_total, "flash_parts": dict(self.flash), "ram_bytes": self.ram_total,
                "static_ram_bytes": self.static_ram, "arena_bytes": self.arena, "stack_bytes": self.stack,
                "heap_bytes": self.heap, "instructions_per_inference": round(instructions_per_inference)}


KERNEL_TITLES = {"reference": "reference kernels", "cmsis_nn": "CMSIS-NN kernels"}


def firmware_lines(card):
    """What `tflite.evaluate` prints of a card's measured firmware images: one line a kernel set."""
    lines = []
    for kernels, image in (card.firmware or {}).items():
        parts = image["flash_parts"]
        lines.append(
            f"Cortex-M4 image, {KERNEL_TITLES.get(kernels, kernels)}: {image['flash_bytes']:,} bytes of flash "
            f"(model {parts['model']:,}, TFLite Micro {parts['tflite_micro']:,}, application "
            f"{parts['application']:,}, C runtime {parts['c_runtime']:,}); {image['ram_bytes']:,} bytes of RAM "
            f"(.data+.bss {image['static_ram_bytes']:,} with the arena's {image['arena_bytes']:,}, stack "
            f"{image['stack_bytes']:,}, heap {image['heap_bytes']:,}); "
            f"{image['instructions_per_inference'] / 1e6:.1f}M instructions per inference")
    return lines


def map_file_parts(map_text):
    """{output section: {part: bytes}} of a GNU ld map file, each input section counted to the part
    (IMAGE_PARTS) its object belongs to, the linker's alignment fill to the part before it.

    An input section's bytes are the distance to the next one's address, not its listed size:
    merged string sections (.rodata.str1.1) list their sizes before duplicates were removed, all
    at one address."""
    parts = collections.defaultdict(lambda: dict.fromkeys(IMAGE_PARTS, 0))
    entries = collections.defaultdict(list)  # section: [(address, part)], in the map's order
    ends = {}
    section, part, pending = None, "c_runtime", None
    for line in map_text.split("Linker script and memory map", 1)[-1].splitlines():
        header = MAP_SECTION.match(line)
        if header:
            section = header.group(1)
            if header.group(2):
                ends[section] = int(header.group(2), 16) + int(header.group(3), 16)
            continue
        match = MAP_INPUT.match(line if pending is None else pending + line)
        pending = line.strip() if re.match(r"^ (\.\S+|COMMON)$", line) else None  # its numbers follow
        if match and section:
            if match.group(1) != "*fill*":
                part = _image_part(match.group(4).strip())
            entries[section].append((int(match.group(2), 16), part))
    for section, listed in entries.items():
        addresses = [address for address, _ in listed] + [ends.get(section, listed[-1][0])]
        for (address, part), following in zip(listed, addresses[1:]):
            parts[section][part] += max(following - address, 0)
    return parts


MAP_SECTION = re.compile(r"^(\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+))?")
MAP_INPUT = re.compile(r"^ ?(\*fill\*|[.\w]\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(.*)$")


def _image_part(source):
    name = Path(source.split("(")[0]).name
    if name == "model_data.o":
        return "model"
    if name in APPLICATION_OBJECTS:
        return "application"
    if name.startswith("cortex-m4-") and name.endswith(".a"):
        return "tflite_micro"
    return "c_runtime"


def parse_replay(printed, maps, views):
    """The int8 outputs in the replay's output: one (maps, views, values) array per output."""
    rows = {}
    for line in printed.splitlines():
        match = REPLAY_LINE.match(line.strip())
        if match:
            index = tuple(int(match.group(i)) for i in (1, 2, 3))
            rows[index] = [int(v) for v in match.group(4).split()]
    if f"replayed {maps} maps" not in printed:
        raise FirmwareError(f"the firmware's replay did not finish {maps} maps: {why(printed)}")
    outputs = sorted({output for _, _, output in rows})
    return [np.array([[rows[(m, v, o)] for v in range(views)] for m in range(maps)], np.int8) for o in outputs]


def why(output, lines=6):
    """The lines of a build or run output that say what went wrong (errors first), at most `lines`."""
    all_lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in all_lines if re.search(r"error|Error|\*\*\*|not found|No such", line)]
    return " | ".join((errors or all_lines)[-lines:]) or "(no output)"
