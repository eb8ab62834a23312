// xdp_load.bpf.c, compiled, as bytes in the tool.
#include <cstddef>

extern "C" {
extern const unsigned char xdp_load_object[];
extern const size_t xdp_load_object_size;
alignas(8) const unsigned char xdp_load_object[] = {
#include "xdp_load_object.inc"
};
const size_t xdp_load_object_size = sizeof xdp_load_object;
}
