// The emulation's shared-memory checks (csrc/common/cuda/emulation/shadow.cpp).
#include "../../csrc/common/cuda/emulation/shadow.cpp"
