#ifndef VGG225K_MODEL_DATA_H_
#define VGG225K_MODEL_DATA_H_

extern const unsigned char g_vgg225k_model_data[];
constexpr unsigned int g_vgg225k_model_data_size = 233304;

#endif  // VGG225K_MODEL_DATA_H_
