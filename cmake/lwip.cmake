# Builds lwIP 2.1.x as a static library with slipway's lwipopts.h.
#
# The source tree is copied into the build directory and our patches from
# netstack/engine/lwip/patches are applied to the copy, so the tree given in
# SLIPWAY_LWIP_SOURCE is never modified.
set(_lwip_src "${SLIPWAY_LWIP_SOURCE}")
if(NOT EXISTS "${_lwip_src}/src/core/tcp.c")
  message(FATAL_ERROR
    "lwIP source not found at '${_lwip_src}'.\n"
    "Run scripts/setup.sh (fetches Debian's lwip source package) or pass "
    "-DSLIPWAY_LWIP_SOURCE=DIR with an lwIP 2.1.x tree.")
endif()
file(STRINGS "${_lwip_src}/src/include/lwip/init.h" _lwip_ver REGEX "define LWIP_VERSION_(MAJOR|MINOR)[ \t]")
if(NOT _lwip_ver MATCHES "MAJOR[ \t]+2" OR NOT _lwip_ver MATCHES "MINOR[ \t]+1")
  message(FATAL_ERROR "SLIPWAY_LWIP_SOURCE=${_lwip_src} is not lwIP 2.1.x")
endif()

set(_lwip_dir "${CMAKE_BINARY_DIR}/lwip")
file(GLOB _lwip_patches CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/netstack/engine/lwip/patches/*.patch")
list(SORT _lwip_patches)
set(_stamp_content "${_lwip_src}")
foreach(_p IN LISTS _lwip_patches)
  file(SHA256 "${_p}" _h)
  string(APPEND _stamp_content ";${_h}")
endforeach()
set(_stamp "${_lwip_dir}/.slipway-patched")
set(_old "")
if(EXISTS "${_stamp}")
  file(READ "${_stamp}" _old)
endif()
if(NOT _old STREQUAL _stamp_content)
  file(REMOVE_RECURSE "${_lwip_dir}")
  file(COPY "${_lwip_src}/src" DESTINATION "${_lwip_dir}")
  find_program(PATCH_EXECUTABLE patch REQUIRED)
  foreach(_p IN LISTS _lwip_patches)
    execute_process(COMMAND "${PATCH_EXECUTABLE}" -p1 --forward --batch -i "${_p}"
                    WORKING_DIRECTORY "${_lwip_dir}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "applying ${_p} to lwIP failed:\n${_out}")
    endif()
  endforeach()
  file(WRITE "${_stamp}" "${_stamp_content}")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_lwip_patches})

set(_c "${_lwip_dir}/src/core")
add_library(slipway_lwip STATIC
  ${_c}/init.c ${_c}/def.c ${_c}/inet_chksum.c ${_c}/ip.c ${_c}/mem.c ${_c}/memp.c
  ${_c}/netif.c ${_c}/pbuf.c ${_c}/stats.c ${_c}/sys.c ${_c}/tcp.c ${_c}/tcp_in.c
  ${_c}/tcp_out.c ${_c}/timeouts.c ${_c}/udp.c ${_c}/raw.c
  ${_c}/ipv4/icmp.c ${_c}/ipv4/ip4_frag.c ${_c}/ipv4/ip4.c ${_c}/ipv4/ip4_addr.c
  ${_c}/ipv6/icmp6.c ${_c}/ipv6/inet6.c ${_c}/ipv6/ip6.c ${_c}/ipv6/ip6_addr.c
  ${_c}/ipv6/ip6_frag.c ${_c}/ipv6/nd6.c ${_c}/ipv6/mld6.c)
target_include_directories(slipway_lwip SYSTEM PUBLIC
  "${CMAKE_SOURCE_DIR}/netstack/engine/lwip"     # lwipopts.h, arch/cc.h
  "${_lwip_dir}/src/include")
target_compile_options(slipway_lwip PRIVATE -w)
set_target_properties(slipway_lwip PROPERTIES POSITION_INDEPENDENT_CODE ON)
