#ifndef KD_248KB_MODEL_DATA_H_
#define KD_248KB_MODEL_DATA_H_

extern const unsigned char g_kd_248kb_model_data[];
constexpr unsigned int g_kd_248kb_model_data_size = 233304;

#endif  // KD_248KB_MODEL_DATA_H_
