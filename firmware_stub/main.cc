// A minimal TensorFlow Lite Micro application: classify wafer maps.
//
// Built with the headers that `python -m tflite.convert` writes (model_data.h/.cc and
// model_settings.h, from MODEL_DIR) and the model's sample_map.h, a synthetic map it reads
// right; see README.md. A model with 8 defect outputs prints the defects it detects in that
// map, from its outputs summed over kNumViews rotations/flips of the map; a segmentation +
// classification model (WAFER_MODEL_HAS_MASK) prints its pattern and its defect mask as text.
//
// Built with WAFER_REPLAY defined (`make host-replay MAPS=file`, `make cortex-m-replay MAPS=file`),
// it reads die maps from the file its first argument names instead (each map: its rows and
// columns, then that many characters '0', '1' or '2', other characters skipped; a map of another
// grid is brought to the input's by the model's resize method, resize_map.h), and prints, for every map and
// view, every int8 output of the model: what the toolkit compares with its own interpreters
// (tflite/firmware.py). On the emulated board the file is the host's, read through semihosting,
// which carries files reliably where the emulator's standard input drops characters.

#include <cstdio>

#include "board/timer.h"
#include "dihedral_views.h"
#include "mask_art.h"
#include "model_settings.h"
#include "patterns.h"
#include "resize_map.h"
#ifndef WAFER_REPLAY
#include "sample_map.h"  // the demo's map
#endif
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

constexpr int kMapDies = kInputHeight * kInputWidth;
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
unsigned long long invoke_ticks = 0;  // timer ticks spent in Invoke() (board/timer.h)
int invokes = 0;

// Runs the model on each of the kNumViews views of `die_map`, calling `on_view(view)` after
// each inference, while the outputs hold that view's. The one inference path of the demo and
// the replay. False when an inference fails.
template <typename OnView>
bool RunViews(tflite::MicroInterpreter& interpreter, const uint8_t* die_map, OnView on_view) {
  static_assert(kInputHeight == kInputWidth, "rotating the map needs a square input");
  for (int view = 0; view < kNumViews; ++view) {
    QuantizeView(die_map, kInputWidth, view, kDieValueInt8, interpreter.input(0)->data.int8);
    const uint32_t start = TimerTicks();
    if (interpreter.Invoke() != kTfLiteOk) {
      printf("inference failed\n");
      return false;
    }
    invoke_ticks += TimerTicks() - start;
    ++invokes;
    on_view(view);
  }
  return true;
}

#ifdef WAFER_REPLAY
#ifndef WAFER_RESIZE_METHOD
#define WAFER_RESIZE_METHOD kResizeNearest  // settings written before model cards named a method
#endif
constexpr int kMaxReplayDies = 256 * 256;  // WM-811K's largest map has 212 x 204 dies

// Reads the next map from `input` and brings it to the input's grid in `die_map`: 1 when it
// did, 0 at the end of the input, -1 (having said why) on a map it cannot read.
int ReadMap(FILE* input, uint8_t* die_map) {
  static uint8_t source[kMaxReplayDies];
  int rows, cols;
  if (fscanf(input, "%d %d", &rows, &cols) != 2) return 0;
  if (rows < 1 || cols < 1 || rows * cols > kMaxReplayDies) {
    printf("a map of %d x %d dies: expected 1 to %d dies\n", rows, cols, kMaxReplayDies);
    return -1;
  }
  int dies = 0;
  for (int c = fgetc(input); c != EOF; c = fgetc(input)) {
    if (c < '0' || c > '2') continue;
    source[dies++] = static_cast<uint8_t>(c - '0');
    if (dies == rows * cols) {
      ResizeMap(source, rows, cols, kInputWidth, WAFER_RESIZE_METHOD, die_map);
      return 1;
    }
  }
  printf("the maps file ends inside a map of %d x %d dies\n", rows, cols);
  return -1;
}

int Replay(tflite::MicroInterpreter& interpreter, const char* path) {
  FILE* input = fopen(path, "r");
  if (input == nullptr) {
    printf("cannot open the maps file %s\n", path);
    return 1;
  }
  static uint8_t die_map[kMapDies];
  int maps = 0;
  int read;
  while ((read = ReadMap(input, die_map)) == 1) {
    const bool ok = RunViews(interpreter, die_map, [&](int view) {
      for (size_t output = 0; output < interpreter.outputs_size(); ++output) {
        const TfLiteTensor* tensor = interpreter.output(output);
        printf("map %d view %d output %u:", maps, view, static_cast<unsigned>(output));
        for (size_t i = 0; i < tensor->bytes; ++i) printf(" %d", tensor->data.int8[i]);
        printf("\n");
      }
    });
    if (!ok) return 1;
    ++maps;
  }
  fclose(input);
  if (read < 0) return 1;
  printf("replayed %d maps; %llu timer ticks in %d inferences\n", maps, invoke_ticks, invokes);
  return 0;
}
#else
int Demo(tflite::MicroInterpreter& interpreter) {
#ifdef WAFER_MODEL_HAS_MASK
  const bool ok = RunViews(interpreter, kSampleMap, [](int) {});
  if (!ok) return 1;
  const int8_t* pattern_logits = interpreter.output(kPatternOutputIndex)->data.int8;
  printf("wafer map of pattern %s; predicted pattern: %s\n", kSampleMapPattern,
         kPatternNames[LargestOutput(pattern_logits, kNumPatterns)]);
  printf("defect mask ('#'):\n");
  PrintMaskArt(interpreter.output(kMaskOutputIndex)->data.int8, kMaskThresholdInt8, kSampleMap, kMaskHeight,
               kMaskWidth);
#else
  // Each defect's outputs less its threshold, summed over the views: proportional to the mean
  // logit less the threshold's, so a defect is present when its sum is above 0.
  int32_t logit_sums[kNumDefects] = {};
  const bool ok = RunViews(interpreter, kSampleMap, [&](int) {
    const int8_t* outputs = interpreter.output(0)->data.int8;
    for (int k = 0; k < kNumDefects; ++k) logit_sums[k] += outputs[k] - kDetectionThresholdInt8[k];
  });
  if (!ok) return 1;
  printf("wafer map of pattern %s; detected defects (%d view%s):", kSampleMapPattern, kNumViews,
         kNumViews > 1 ? "s" : "");
  int detected = 0;
  for (int k = 0; k < kNumDefects; ++k) {
    if (logit_sums[k] > 0) {
      printf(" %s", kDefectNames[k]);
      ++detected;
    }
  }
  printf(detected ? "\n" : " none (Normal)\n");
  // Thresholding may name a combination that never occurs; the nearest pattern is one of the 38.
  printf("nearest pattern: %s\n", kPatternNames[NearestPattern(logit_sums, 0)]);
#endif
  printf("arena used: %u of %d bytes\n", static_cast<unsigned>(interpreter.arena_used_bytes()),
         kTensorArenaSize);
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  StartTimer();
  const tflite::Model* model = tflite::GetModel(ModelData());
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("model schema %lu, expected %d\n", static_cast<unsigned long>(model->version()),
           TFLITE_SCHEMA_VERSION);
    return 1;
  }

  tflite::MicroMutableOpResolver<kNumModelOps> resolver;
  if (!RegisterModelOps(resolver)) {
    printf("could not register the model's ops\n");
    return 1;
  }

  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("the tensor arena (%d bytes) is too small\n", kTensorArenaSize);
    return 1;
  }
#ifdef WAFER_REPLAY
  if (argc != 2) {
    printf("usage: %s MAPS_FILE\n", argc ? argv[0] : "wafer_replay");
    return 2;
  }
  return Replay(interpreter, argv[1]);
#else
  (void)argc, (void)argv;
  return Demo(interpreter);
#endif
}
