#ifndef NET1_MODEL_DATA_H_
#define NET1_MODEL_DATA_H_

extern const unsigned char g_net1_model_data[];
constexpr unsigned int g_net1_model_data_size = 65920;

#endif  // NET1_MODEL_DATA_H_
