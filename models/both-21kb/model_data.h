#ifndef SEPARABLE8K_MODEL_DATA_H_
#define SEPARABLE8K_MODEL_DATA_H_

extern const unsigned char g_separable8k_model_data[];
constexpr unsigned int g_separable8k_model_data_size = 15960;

#endif  // SEPARABLE8K_MODEL_DATA_H_
