#pragma once
// Quantized activation storage, shared by every integer kernel and by the runtime's memory plan.
//
// An integer activation tensor of logical shape [N, C, H, W] (or [N, C], i.e. H = W = 1) is
// stored NHWC: pixel after pixel, each pixel holding qchannel_stride(type, C) channels, of which
// the ones past C are padding and always hold the tensor's zero point (0, or 128 for the u8 image
// input), so kernels may read whole groups of 4 (u8/s8) or 8 (u4) channels. U4 packs two channels
// per byte, the even channel in the low nibble. Values are integers q with real value
// scale * (q - zero_point); scales live in the graph, kernels only see precomputed multipliers.
#include <cstdint>

namespace fgq::ops {

enum class QType : uint8_t { U8, S8, U4, F32 };

// Channels per pixel in storage: U8/S8 round C up to 4, U4 to 8; F32 keeps C.
constexpr int64_t qchannel_stride(QType t, int64_t C) {
  return t == QType::F32 ? C : t == QType::U4 ? (C + 7) / 8 * 8 : (C + 3) / 4 * 4;
}
// Bytes per pixel.
constexpr int64_t qpixel_bytes(QType t, int64_t C) {
  return t == QType::F32 ? 4 * C : t == QType::U4 ? qchannel_stride(t, C) / 2 : qchannel_stride(t, C);
}

const char* qtype_name(QType t);

}  // namespace fgq::ops
