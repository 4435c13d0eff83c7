#ifndef KD_21KB_MODEL_DATA_H_
#define KD_21KB_MODEL_DATA_H_

extern const unsigned char g_kd_21kb_model_data[];
constexpr unsigned int g_kd_21kb_model_data_size = 15960;

#endif  // KD_21KB_MODEL_DATA_H_
