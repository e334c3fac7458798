# cmake -DOUT=<file.cc> -DDIR=<folder> -DFILES="a.html;b.js" -P embed_files.cmake
# Writes a C++ source defining onestory::service::ConsoleAssets() (services/common/
# console_assets.h): each file's bytes, its name and its content type, so the binary serves them
# with no file beside it.
set(body "")
set(table "")
set(n 0)
foreach(name ${FILES})
  file(READ "${DIR}/${name}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
  if(name MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(name MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(name MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  else()
    message(FATAL_ERROR "embed_files: no content type for ${name}")
  endif()
  string(APPEND body "const unsigned char k${n}[] = {\n${hex}};\n")
  string(APPEND table "      {\"${name}\", \"${type}\", {reinterpret_cast<const char*>(k${n}), sizeof(k${n})}},\n")
  math(EXPR n "${n} + 1")
endforeach()
file(WRITE "${OUT}.tmp"
"// Generated from ${DIR} by cmake/embed_files.cmake: do not edit.
#include \"services/common/console_assets.h\"

namespace onestory::service {
namespace {
${body}}  // namespace

const std::vector<ConsoleAsset>& ConsoleAssets() {
  static const std::vector<ConsoleAsset> assets = {
${table}  };
  return assets;
}

}  // namespace onestory::service
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
