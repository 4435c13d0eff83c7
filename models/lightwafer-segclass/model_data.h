#ifndef LIGHTWAFER_SEGCLASS_MODEL_DATA_H_
#define LIGHTWAFER_SEGCLASS_MODEL_DATA_H_

extern const unsigned char g_lightwafer_segclass_model_data[];
constexpr unsigned int g_lightwafer_segclass_model_data_size = 69448;

#endif  // LIGHTWAFER_SEGCLASS_MODEL_DATA_H_
