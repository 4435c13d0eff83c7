#ifndef NET2_MODEL_DATA_H_
#define NET2_MODEL_DATA_H_

extern const unsigned char g_net2_model_data[];
constexpr unsigned int g_net2_model_data_size = 8168;

#endif  // NET2_MODEL_DATA_H_
