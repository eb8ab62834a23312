// The compiled XDP program (strata_xdp.bpf.c), as bytes in stratad: nothing to install or find
// at run time, and the program always matches the loader that fills its maps.
#include <cstddef>

extern "C" {
extern const unsigned char strata_xdp_object[];
extern const size_t strata_xdp_object_size;
alignas(8) const unsigned char strata_xdp_object[] = {
#include "strata_xdp_object.inc"
};
const size_t strata_xdp_object_size = sizeof strata_xdp_object;
}
