# Writes the bytes of file IN as a C initializer list into OUT (for strata_xdp_object.cc).
file(READ ${IN} HEX HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${HEX}")
file(WRITE ${OUT} "${BYTES}\n")
