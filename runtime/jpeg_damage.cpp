// Damaged JPEG files, found before they are decoded and scored: libjpeg decodes a truncated or
// corrupt file with only a warning on stderr (no file name) and grey or garbled pixels.
#include <csetjmp>
#include <cstdio>
#include <string>

#include <jpeglib.h>

#include "runtime/preprocess.h"

namespace fgq {

namespace {

std::string fmt_hex(uint8_t v) {
  static const char* digits = "0123456789ABCDEF";
  return {digits[v >> 4], digits[v & 15]};
}

// The marker structure: segments, scans and the end-of-image marker.
std::string jpeg_structure_damage(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) return "";
  const std::string truncated = "truncated JPEG (" + std::to_string(n) +
                                " bytes, no end-of-image marker; decoders fill the rest with grey)";
  size_t i = 2;
  for (;;) {
    if (i >= n) return truncated;
    if (d[i] != 0xFF) {
      size_t j = i;
      while (j < n && d[j] != 0xFF) ++j;
      if (j >= n) return truncated;
      return "corrupt JPEG (" + std::to_string(j - i) + " stray bytes before the marker at byte " +
             std::to_string(j) + ")";
    }
    while (i < n && d[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) return truncated;
    const uint8_t marker = d[i++];
    if (marker == 0xD9) return "";                                  // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0x00 || marker == 0xD8)
      return "corrupt JPEG (marker 0xFF" + fmt_hex(marker) + " at byte " + std::to_string(i - 2) + ")";
    if (n - i < 2) return truncated;
    const size_t len = size_t(d[i]) << 8 | d[i + 1];
    if (len < 2)
      return "corrupt JPEG (segment length " + std::to_string(len) + " at byte " + std::to_string(i) + ")";
    if (n - i < len) return truncated;
    i += len;
    if (marker != 0xDA) continue;
    // Entropy-coded data of a scan: up to the next marker that is not a stuffed 0xFF00, a restart
    // marker or a fill byte.
    for (;;) {
      while (i < n && d[i] != 0xFF) ++i;
      if (n - i < 2) return truncated;
      const uint8_t m = d[i + 1];
      if (m == 0x00 || (m >= 0xD0 && m <= 0xD7)) {
        i += 2;
      } else if (m == 0xFF) {
        ++i;
      } else {
        break;  // the marker after the scan
      }
    }
  }
}

// libjpeg's errors end the decode (longjmp back); its warnings (corrupt entropy-coded data, bad
// Huffman codes, extraneous bytes, premature end) are kept, the first one's text as the reason.
struct ErrorManager {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char first[JMSG_LENGTH_MAX];
  int warnings;
};

void on_error(j_common_ptr c) {
  ErrorManager* e = reinterpret_cast<ErrorManager*>(c->err);
  if (e->warnings == 0) (*c->err->format_message)(c, e->first);
  std::longjmp(e->jump, 1);
}

void on_message(j_common_ptr c, int level) {
  ErrorManager* e = reinterpret_cast<ErrorManager*>(c->err);
  if (level >= 0) return;  // trace messages
  if (e->warnings++ == 0) (*c->err->format_message)(c, e->first);
}

// Entropy-decodes every scan (jpeg_read_coefficients: no IDCT, upsampling or colour conversion,
// about a third of a decode) and reports the first warning or error. Plain C data only between
// setjmp and longjmp.
bool entropy_damage(const uint8_t* d, size_t n, char (&why)[JMSG_LENGTH_MAX]) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  err.mgr.emit_message = on_message;
  err.warnings = 0;
  err.first[0] = 0;
  bool damaged = false;
  if (setjmp(err.jump) == 0) {
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, d, static_cast<unsigned long>(n));
    jpeg_read_header(&cinfo, TRUE);
    jpeg_read_coefficients(&cinfo);
    jpeg_finish_decompress(&cinfo);
    damaged = err.warnings > 0;
  } else {
    damaged = true;
  }
  jpeg_destroy_decompress(&cinfo);
  if (damaged) std::snprintf(why, sizeof why, "%s", err.first);
  return damaged;
}

}  // namespace

std::string jpeg_damage(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) return "";
  if (std::string why = jpeg_structure_damage(d, n); !why.empty()) return why;
  char why[JMSG_LENGTH_MAX];
  if (entropy_damage(d, n, why)) return std::string("corrupt JPEG (libjpeg: ") + why + ")";
  return "";
}

}  // namespace fgq
