// A minimal TensorFlow Lite Micro application: classify one wafer map.
//
// Built with the headers that `python -m tflite.convert` writes (model_data.h/.cc and
// model_settings.h, from MODEL_DIR) and sample_map.h; see README.md. A model with 8 defect
// outputs prints the defects it detects, from its outputs summed over kNumViews rotations/flips
// of the map; a segmentation + classification model (WAFER_MODEL_HAS_MASK) prints its pattern
// and its defect mask as text.

#include <cstdio>

#include "dihedral_views.h"
#include "mask_art.h"
#include "model_settings.h"
#include "patterns.h"
#include "sample_map.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
}  // namespace

int main() {
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

  static_assert(kInputHeight == kInputWidth, "rotating the map needs a square input");
#ifdef WAFER_MODEL_HAS_MASK
  // Quantize the die map: each die value has one exact int8 value.
  QuantizeView(kSampleMap, kInputWidth, 0, kDieValueInt8, interpreter.input(0)->data.int8);
  if (interpreter.Invoke() != kTfLiteOk) {
    printf("inference failed\n");
    return 1;
  }
  const int8_t* pattern_logits = interpreter.output(kPatternOutputIndex)->data.int8;
  printf("wafer map of pattern %s; predicted pattern: %s\n", kSampleMapPattern,
         kPatternNames[LargestOutput(pattern_logits, kNumPatterns)]);
  printf("defect mask ('#'):\n");
  PrintMaskArt(interpreter.output(kMaskOutputIndex)->data.int8, kMaskThresholdInt8, kSampleMap, kMaskHeight,
               kMaskWidth);
#else
  // Each defect's outputs less the zero point, summed over the views: proportional to the
  // mean logit, so a defect is present when its sum is above 0.
  int32_t logit_sums[kNumDefects] = {};
  for (int view = 0; view < kNumViews; ++view) {
    QuantizeView(kSampleMap, kInputWidth, view, kDieValueInt8, interpreter.input(0)->data.int8);
    if (interpreter.Invoke() != kTfLiteOk) {
      printf("inference failed\n");
      return 1;
    }
    const int8_t* outputs = interpreter.output(0)->data.int8;
    for (int k = 0; k < kNumDefects; ++k) logit_sums[k] += outputs[k] - kOutputZeroPoint;
  }
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
