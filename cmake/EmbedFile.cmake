# cmake -DINPUT=FILE -DOUTPUT=FILE.cpp -DNAMESPACE=ns -DFUNCTION=name -P EmbedFile.cmake
# Writes a C++ file whose function `std::string_view ns::name()` returns INPUT's bytes: files a
# binary serves (the web UI) need no path at run time.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" length)
math(EXPR bytes "${length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," body "${hex}")
string(REGEX REPLACE "(('\\\\x[0-9a-f][0-9a-f]',){32})" "\\1\n" body "${body}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedFile.cmake; do not edit.\n#include <string_view>\n\n"
  "namespace ${NAMESPACE} {\nnamespace {\nconst char bytes[] = {\n${body}'\\0'};\n}  // namespace\n\n"
  "std::string_view ${FUNCTION}() { return std::string_view(bytes, ${bytes}); }\n\n}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
