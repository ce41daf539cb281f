# What a system installation carries besides the programs and the library:
# man pages made from each program's --help (help2man, at build time), the
# bash completion, and the Debian package (`cpack -G DEB` in the build
# directory: slipway_VERSION_ARCH.deb, its Depends computed from the
# programs' shared libraries by dpkg-shlibdeps).

include(GNUInstallDirs)

find_program(SLIPWAY_HELP2MAN help2man)
find_program(SLIPWAY_GZIP gzip)
if(SLIPWAY_HELP2MAN AND SLIPWAY_GZIP)
  set(SLIPWAY_MAN_DIR ${CMAKE_BINARY_DIR}/man)
  set(SLIPWAY_MAN_PAGES)
  # slipway_man_page(TARGET "what it is"): TARGET.1.gz from `TARGET --help`.
  function(slipway_man_page target description)
    set(page ${SLIPWAY_MAN_DIR}/${target}.1)
    add_custom_command(OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${SLIPWAY_MAN_DIR}
      COMMAND ${SLIPWAY_HELP2MAN} --no-info --no-discard-stderr --version-string=${PROJECT_VERSION}
              --name=${description} --output=${page} $<TARGET_FILE:${target}>
      COMMAND ${SLIPWAY_GZIP} -9nf ${page}
      DEPENDS ${target}
      COMMENT "help2man: ${target}.1"
      VERBATIM)
    set(SLIPWAY_MAN_PAGES ${SLIPWAY_MAN_PAGES} ${page}.gz PARENT_SCOPE)
  endfunction()
  slipway_man_page(slipway "user-mode networking for network namespaces and virtual machines")
  slipway_man_page(slipway-slirp4netns "slipway behind slirp4netns's command line and API (Podman, RootlessKit)")
  slipway_man_page(portfwd "relay TCP or UDP between host addresses, or manage a running slipway's forwards")
  slipway_man_page(dns-proxy "DNS proxy with cache, split DNS and static names")
  slipway_man_page(portfwd-agent "report a VM's listening ports to slipway")
  add_custom_target(man ALL DEPENDS ${SLIPWAY_MAN_PAGES})
  install(FILES ${SLIPWAY_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(WARNING "help2man or gzip not found: no man pages (scripts/setup.sh installs help2man)")
endif()

# bash-completion loads a command's completion from a file of its name.
set(SLIPWAY_COMPLETION ${CMAKE_SOURCE_DIR}/data/bash-completion/slipway)
install(FILES ${SLIPWAY_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${SLIPWAY_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME slipway-slirp4netns)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME slipway)
set(CPACK_PACKAGE_VENDOR slipway)
set(CPACK_PACKAGE_CONTACT "slipway maintainers <maintainers@slipway.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "user-mode networking for network namespaces and VMs, a drop-in for slirp4netns")
set(CPACK_PACKAGE_DESCRIPTION
    "slipway gives a network namespace or a virtual machine its own network without root: a\n"
    "user-space TCP/IP stack relays the guest's connections over host sockets. It includes\n"
    "slipway-slirp4netns, which speaks slirp4netns's command line and API for rootless Podman\n"
    "and RootlessKit, the portfwd and dns-proxy tools, portfwd-agent, and libslipway.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bash-completion")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "podman, rootlesskit, uidmap")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://slipway.invalid/")
include(CPack)
