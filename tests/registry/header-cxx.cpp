// SPDX-License-Identifier: MIT
// The public header compiles as C++ and declares its functions extern "C".
#include <crossbuf/crossbuf.h>

extern "C" void (*const crossbuf_header_cxx_fn)(uint8_t *);
extern "C" void (*const crossbuf_header_cxx_fn)(uint8_t *) = crossbuf_uuid_generate;

int crossbuf_header_cxx_check();

int crossbuf_header_cxx_check()
{
	return static_cast<int>(sizeof(crossbuf_buffer_info));
}
