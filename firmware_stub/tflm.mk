# TensorFlow Lite Micro built from source with our own rules (included by the Makefile).
#
# TFLite Micro's own Makefile downloads flatbuffers, gemmlowp, ruy, CMSIS and a compiler at build
# time, which cannot work offline; so the library's sources are listed and compiled here. The
# pinned sources are read from ../shared/third_party by default; point the *_DIR variables at
# your own checkouts to use others.
#
# Two libraries per toolchain, cached under $(BUILD)/tflm/: the runtime (<toolchain>-core.a) and
# one per kernel set (<toolchain>-<kernels>.a), so the Cortex-M4's two kernel sets share one
# runtime. A second model links against them in seconds.

THIRD_PARTY ?= $(abspath ../../shared/third_party)
TFLM_DIR ?= $(THIRD_PARTY)/tflite-micro
FLATBUFFERS_DIR ?= $(THIRD_PARTY)/flatbuffers
GEMMLOWP_DIR ?= $(THIRD_PARTY)/gemmlowp
RUY_DIR ?= $(THIRD_PARTY)/ruy
CMSIS_NN_DIR ?= $(THIRD_PARTY)/cmsis-nn
CMSIS_DIR ?= $(THIRD_PARTY)/cmsis

TFLM_INCLUDES = -I$(TFLM_DIR) -I$(FLATBUFFERS_DIR)/include -I$(GEMMLOWP_DIR) -I$(RUY_DIR)
TFLM_FLAGS = -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics -DTF_LITE_STATIC_MEMORY

# Every library source: not a test, not an example or tool, not another platform's port.
TFLM_SKIP_ANYWHERE = examples tools testing benchmarks compression experimental
TFLM_SKIP_PORTS = arc_custom arc_emsdp ceva chre cortex_m_corstone_300 cortex_m_generic hexagon riscv32_generic \
	bluepill xtensa kernels
TFLM_SKIP_FILES = %_test.cc %test_helper.cc %test_helpers.cc %test_helper_custom_ops.cc \
	%fake_micro_context.cc %kernel_runner.cc %mock_micro_graph.cc
tflm_find = $(shell cd $(TFLM_DIR) 2>/dev/null && find tensorflow -name '*.cc' \
	$(foreach d,$(TFLM_SKIP_ANYWHERE),-not -path '*/$(d)/*') \
	$(foreach d,$(TFLM_SKIP_PORTS),-not -path 'tensorflow/lite/micro/$(d)/*') | sort)
# The runtime: interpreter, allocators, memory planner, flatbuffer schema, quantization helpers.
TFLM_CORE_SOURCES := $(filter-out $(TFLM_SKIP_FILES),$(tflm_find))

# The kernels: only those of the ops the toolkit can register (tflite/c_sources.py: RESOLVER_METHODS),
# each op's file and its _common file, and what they share. Compiling all 127 kernel files would
# more than double the build (about 9 s of CPU a file on the 2-core CI machine) for kernels no
# model of ours registers, and the linker drops them anyway.
TFLM_KERNELS = activations add concatenation conv depthwise_conv dequantize fully_connected hard_swish logistic \
	mul pad pooling quantize reduce reshape resize_bilinear resize_nearest_neighbor strided_slice
TFLM_KERNEL_DIR = tensorflow/lite/micro/kernels
tflm_kernel_files = $(patsubst $(TFLM_DIR)/%,%,$(wildcard $(foreach k,$(1),$(TFLM_DIR)/$(TFLM_KERNEL_DIR)/$(k).cc \
	$(TFLM_DIR)/$(TFLM_KERNEL_DIR)/$(k)_common.cc)))
TFLM_KERNEL_SOURCES := $(call tflm_kernel_files,$(TFLM_KERNELS) kernel_util micro_tensor_utils)

# CMSIS-NN: TFLite Micro's kernels/cmsis_nn/ replace the reference kernels of the same name.
CMSIS_NN_KERNELS := $(filter $(TFLM_KERNELS),\
	$(basename $(notdir $(wildcard $(TFLM_DIR)/$(TFLM_KERNEL_DIR)/cmsis_nn/*.cc))))
TFLM_CMSIS_NN_KERNEL_SOURCES := $(filter-out $(CMSIS_NN_KERNELS:%=$(TFLM_KERNEL_DIR)/%.cc),$(TFLM_KERNEL_SOURCES)) \
	$(CMSIS_NN_KERNELS:%=$(TFLM_KERNEL_DIR)/cmsis_nn/%.cc)
# Its floating-point kernels (_f16, _f32 and their tables) are left out, as TFLite Micro's own
# build does by default (ARM_NN_ENABLE_F16/F32=0): int8 models do not use them.
CMSIS_NN_SOURCES := $(filter-out %_f16.c %_f32.c %/arm_nntables_flt.c,\
	$(shell cd $(CMSIS_NN_DIR) 2>/dev/null && find Source -name '*.c' | sort))
CMSIS_NN_INCLUDES = -I$(CMSIS_NN_DIR) -I$(CMSIS_NN_DIR)/Include -I$(CMSIS_DIR)/CMSIS/Core/Include \
	-DARM_NN_ENABLE_F16=0 -DARM_NN_ENABLE_F32=0

# Parsing the flatbuffer schema (schema_generated.h) is about 4 of the 5 s it takes g++ to compile one
# kernel (measured on the 2-core CI machine). So each library precompiles it once, with the library's
# own compiler and flags, and every kernel includes it first: the kernels build 2.4 times faster
# (host, reference kernels: 111 s -> 46 s). The runtime's sources gain nothing from it (many never
# read the schema, and loading the 250 MB .gch costs them), so they compile as they are. A compiler
# that cannot use the .gch reads the header itself.
TFLM_PRECOMPILED = tensorflow/lite/schema/schema_generated.h

# $(call tflm_library,LIBRARY,SOURCES,C SOURCES,COMPILER,C COMPILER,FLAGS,ARCHIVER): $(BUILD)/tflm/LIBRARY.a
define tflm_library
$(BUILD)/tflm/$(1).a: $(addprefix $(BUILD)/tflm/$(1)/,$(2:.cc=.o) $(3:.c=.o))
	@rm -f $$@
	$(7) rcs $$@ $$^
	@echo "built $$@ ($$(words $$^) objects)"

# Intermediate: make deletes the .gch (about 250 MB) once the library is built, and remakes it only
# when a kernel must be compiled again.
.INTERMEDIATE: $(BUILD)/tflm/$(1)/precompiled.h.gch
$(BUILD)/tflm/$(1)/precompiled.h.gch: $(TFLM_DIR)/$(TFLM_PRECOMPILED)
	@mkdir -p $$(@D)
	@echo '#include "$(TFLM_PRECOMPILED)"' > $$(basename $$@)
	@$(4) $(6) -x c++-header $$(basename $$@) -o $$@.tmp && mv $$@.tmp $$@

$(BUILD)/tflm/$(1)/$(TFLM_KERNEL_DIR)/%.o: $(TFLM_DIR)/$(TFLM_KERNEL_DIR)/%.cc $(BUILD)/tflm/$(1)/precompiled.h.gch
	@mkdir -p $$(@D)
	@$(4) $(6) -include $(BUILD)/tflm/$(1)/precompiled.h -c $$< -o $$@

$(BUILD)/tflm/$(1)/%.o: $(TFLM_DIR)/%.cc
	@mkdir -p $$(@D)
	@$(4) $(6) -c $$< -o $$@

$(BUILD)/tflm/$(1)/%.o: $(CMSIS_NN_DIR)/%.c
	@mkdir -p $$(@D)
	@$(5) $(filter-out -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics,$(6)) -std=c11 -c $$< -o $$@
endef
