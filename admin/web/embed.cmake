# cmake -DINPUT=page.html -DOUTPUT=page.cpp -P embed.cmake
# Writes a C++ file defining switchyard::admin::detail::live_page_html, the page's bytes as a raw
# string literal, so that the binary serves the page without reading any file at run time.
file(READ "${INPUT}" content)
set(delimiter "sy_page")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${INPUT} holds )${delimiter}\", the end of the raw string literal")
endif()
file(WRITE "${OUTPUT}.tmp"
    "// Generated from ${INPUT} by ${CMAKE_CURRENT_LIST_FILE}; do not edit.\n"
    "#include <string_view>\n\n"
    "namespace switchyard::admin::detail {\n"
    "extern const std::string_view live_page_html;\n"
    "const std::string_view live_page_html = R\"${delimiter}(${content})${delimiter}\";\n"
    "}  // namespace switchyard::admin::detail\n")
# Unchanged output keeps its timestamp: nothing recompiles when the page did not change.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
