/* kserve_internal.h — helpers shared by kserve.c (parse) and kserve_render.c. */
#ifndef RS_KSERVE_INTERNAL_H
#define RS_KSERVE_INTERNAL_H

#include <stdint.h>

/* IEEE half and bfloat16 <-> float, round to nearest even. */
uint16_t rs_kserve_f32_to_f16(float f);
float rs_kserve_f16_to_f32(uint16_t h);
uint16_t rs_kserve_f32_to_bf16(float f);
float rs_kserve_bf16_to_f32(uint16_t b);

#endif
