// Compiles model_settings.h without TFLite Micro: a stand-in resolver records which ops
// RegisterModelOps() adds, and the sample map is quantized as main.cc does it.

#include <cstdio>

#include "model_settings.h"
#include "sample_map.h"

namespace {
struct CountingResolver {
  int added = 0;
  int Add() { return ++added, 0; }
  int AddAdd() { return Add(); }
  int AddAveragePool2D() { return Add(); }
  int AddConcatenation() { return Add(); }
  int AddConv2D() { return Add(); }
  int AddDepthwiseConv2D() { return Add(); }
  int AddDequantize() { return Add(); }
  int AddFullyConnected() { return Add(); }
  int AddHardSwish() { return Add(); }
  int AddLogistic() { return Add(); }
  int AddMaxPool2D() { return Add(); }
  int AddMean() { return Add(); }
  int AddMul() { return Add(); }
  int AddPad() { return Add(); }
  int AddQuantize() { return Add(); }
  int AddRelu() { return Add(); }
  int AddRelu6() { return Add(); }
  int AddReshape() { return Add(); }
  int AddResizeBilinear() { return Add(); }
  int AddResizeNearestNeighbor() { return Add(); }
  int AddSoftmax() { return Add(); }
  int AddStridedSlice() { return Add(); }
  int AddSub() { return Add(); }
  int AddTransposeConv() { return Add(); }
};
}  // namespace

int main() {
  CountingResolver resolver;
  if (!RegisterModelOps(resolver) || resolver.added != kNumModelOps) {
    printf("RegisterModelOps added %d ops, expected %d\n", resolver.added, kNumModelOps);
    return 1;
  }
  long checksum = 0;
  for (int i = 0; i < kInputHeight * kInputWidth; ++i) checksum += kDieValueInt8[kSampleMap[i]];
  printf("model %u bytes, %d ops registered, arena %d bytes, input checksum %ld, first byte 0x%02x\n",
         kModelDataSize, resolver.added, kTensorArenaSize, checksum, ModelData()[0]);
  return 0;
}
