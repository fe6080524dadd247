# Build step of the CPU emulation: copies a CUDA source or header, rewriting
#   kernel<<<grid, block, smem, stream>>>(args)  ->  CUEMU_LAUNCH(kernel, grid, block, smem, stream)(args)
# and appending CUEMU_SHARED_TOUCH(name); after every `__shared__ ... name[...];`
# (see include/cuemu/device.h). A #line directive keeps diagnostics pointing
# at the original file. Usage: cmake -DIN=src -DOUT=dst -P rewrite.cmake
file(READ "${IN}" text)
if(text MATCHES "extern[ \t]+__shared__")
  message(FATAL_ERROR "${IN}: dynamic shared memory (extern __shared__) is not emulated")
endif()
# a kernel name, possibly with template arguments without commas (k<true>)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_:]*(<[^<>;(){},]*>)?)[ \t]*<<<" "CUEMU_LAUNCH(\\1, " text "${text}")
string(REGEX REPLACE ">>>[ \t\r\n]*\\(" ")(" text "${text}")
if(text MATCHES "<<<|>>>")
  message(FATAL_ERROR "${IN}: a kernel launch the emulator's rewrite does not understand "
                      "(template arguments with a comma? launch through a wrapper function)")
endif()
string(REGEX MATCHALL "__shared__[^;{}()]*" decls "${text}")
list(REMOVE_DUPLICATES decls)
foreach(d IN LISTS decls)
  if(NOT d MATCHES "([A-Za-z_][A-Za-z0-9_]*)[ \t]*(\\[[^;]*)?$")
    message(FATAL_ERROR "${IN}: cannot find the variable of `${d}`")
  endif()
  string(REPLACE "${d};" "${d}; CUEMU_SHARED_TOUCH(${CMAKE_MATCH_1});" text "${text}")
endforeach()
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
